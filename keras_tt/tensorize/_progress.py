"""The progress bar of `tensorize`: one step per TT-SVD truncation."""

from __future__ import annotations

import keras


class Progress:
    """Counts truncations; draws a `keras.utils.Progbar` when verbose."""

    def __init__(self, total: int, verbose: int):
        self.done = 0
        self.bar = (
            keras.utils.Progbar(total, verbose=verbose, unit_name="step")
            if verbose
            else None
        )

    def advance(self, _=None) -> None:
        """The callback given to `keras_tt.tt_svd`."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.done)

    def finish_layer(self, done_before: int, steps: int) -> None:
        """Catch up to the planned steps of a layer that took fewer."""
        while self.done < done_before + steps:
            self.advance()
