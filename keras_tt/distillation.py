"""Recovery by distillation: train a compressed student against its teacher.

After `keras_tt.tensorize` the compressed model (the *student*) is usually
fine-tuned on the labels alone. Knowledge distillation (Hinton, Vinyals and
Dean, 2015) also trains it to match the original model (the *teacher*):
the loss is

    alpha * CE(labels, student)
        + (1 - alpha) * T^2 * KL(p_T(teacher) || p_T(student))

with ``p_T(z) = softmax(z / T)`` at temperature ``T`` (soft targets: the
teacher's relative probabilities of the wrong classes carry what it knows).
`Distiller` is a `keras.Model` whose ``compute_loss`` does this with
`keras.ops` only, so it trains on any backend; `distill` wraps it for
arrays. The teacher is called in inference mode and never trained (it is
held outside Keras's weight tracking, so the optimizer never sees it).
"""

from __future__ import annotations

import numbers

import keras
from keras import ops


class _Held:
    """Holds a model without Keras tracking it as a sublayer."""

    def __init__(self, model):
        self.model = model


def _check_fraction(value, name, low_open=False):
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and (0 < value if low_open else 0 <= value)
        and value <= 1
    )
    if not ok:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a number in "
            f"{'(0' if low_open else '[0'}, 1]. Received: {name}={value!r}"
        )


def _log_probs(outputs, temperature, from_logits):
    if from_logits:
        return ops.log_softmax(outputs / temperature, axis=-1)
    logs = ops.log(ops.clip(outputs, 1e-7, 1.0))
    return ops.log_softmax(logs / temperature, axis=-1)


@keras.saving.register_keras_serializable(package="keras_tt")
class Distiller(keras.Model):
    """Trains ``student`` on labels and on ``teacher``'s soft targets.

    Call ``compile(optimizer=..., metrics=[...])`` (no loss: the loss is
    built in) and ``fit(x, y)`` with integer class labels ``y``. The
    metrics see the student's outputs. Predicting with the distiller
    predicts with the student; after ``fit``, use ``student`` itself.

    Args:
        student: the model to train (for instance a tensorized model).
        teacher: the model to imitate (for instance the original model);
            called with ``training=False`` and never updated.
        temperature: positive number ``T`` softening both distributions.
        alpha: weight of the label loss, in [0, 1]; ``1 - alpha`` goes to
            the distillation term (scaled by ``T^2``, so that its gradients
            keep their size across temperatures).
        from_logits: whether both models output logits (default) or
            probabilities (a final softmax).

    Example:

    >>> import keras, numpy as np
    >>> teacher = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    >>> student = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    >>> distiller = Distiller(student, teacher, temperature=2.0, alpha=0.5)
    >>> distiller.compile(optimizer="adam", metrics=["accuracy"])
    >>> x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    >>> y = np.zeros(32, "int32")
    >>> history = distiller.fit(x, y, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'loss']
    >>> len(distiller.trainable_weights) == len(student.trainable_weights)
    True
    """

    def __init__(
        self,
        student,
        teacher,
        temperature: float = 4.0,
        alpha: float = 0.5,
        from_logits: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("student", student), ("teacher", teacher)):
            if not isinstance(value, keras.Model):
                raise ValueError(
                    f"Received an invalid value for `{name}`, expected a "
                    f"Keras model. Received: {name}={type(value).__name__}"
                )
        if not (
            isinstance(temperature, numbers.Real)
            and not isinstance(temperature, bool)
            and temperature > 0
        ):
            raise ValueError(
                "Received an invalid value for `temperature`, expected a "
                f"positive number. Received: temperature={temperature!r}"
            )
        _check_fraction(alpha, "alpha")
        self.student = student
        self._teacher = _Held(teacher)
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.from_logits = bool(from_logits)
        self._hard_loss = keras.losses.SparseCategoricalCrossentropy(
            from_logits=self.from_logits, reduction=None
        )

    @property
    def teacher(self):
        return self._teacher.model

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        if y_pred is None:
            y_pred = self.student(x, training=training)
        teacher_out = ops.stop_gradient(self.teacher(x, training=False))
        t = self.temperature
        log_soft = _log_probs(teacher_out, t, self.from_logits)
        log_student = _log_probs(y_pred, t, self.from_logits)
        kd = ops.sum(ops.exp(log_soft) * (log_soft - log_student), axis=-1)
        kd = kd * (t * t)
        per_example = (1.0 - self.alpha) * kd
        if self.alpha > 0:
            if y is None:
                raise ValueError(
                    "`Distiller` with alpha > 0 needs labels `y`; pass "
                    "alpha=0 to train on the teacher alone."
                )
            per_example = per_example + self.alpha * self._hard_loss(y, y_pred)
        if sample_weight is not None:
            weight = ops.cast(sample_weight, per_example.dtype)
            loss = ops.sum(per_example * weight) / ops.maximum(
                ops.sum(weight), 1e-12
            )
        else:
            loss = ops.mean(per_example)
        for extra in self.losses:
            loss = loss + ops.cast(extra, loss.dtype)
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "alpha": self.alpha,
            "from_logits": self.from_logits,
        }


def distill(
    student,
    teacher,
    x,
    y,
    epochs: int = 2,
    batch_size: int = 128,
    temperature: float = 4.0,
    alpha: float = 0.5,
    optimizer="adam",
    from_logits: bool = True,
    validation_data=None,
    verbose: int = 0,
    **fit_kwargs,
):
    """Fine-tune ``student`` by distillation from ``teacher``; return the
    `keras.callbacks.History` of the fit.

    The student is trained in place (use it afterwards as usual; it is not
    left compiled with the distillation loss). ``validation_data``
    ``(x_val, y_val)`` reports ``val_accuracy`` of the student per epoch.
    Other keyword arguments go to ``fit``. See `Distiller` for the loss and
    the arguments.

    Example:

    >>> import keras, numpy as np
    >>> teacher = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    >>> student = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    >>> x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    >>> y = np.argmax(teacher.predict(x, verbose=0), axis=1)
    >>> history = distill(student, teacher, x, y, epochs=3)
    >>> len(history.history["loss"])
    3
    """
    if not (isinstance(epochs, int) and not isinstance(epochs, bool)):
        raise ValueError(
            "Received an invalid value for `epochs`, expected a "
            f"non-negative integer. Received: epochs={epochs!r}"
        )
    distiller = Distiller(
        student, teacher, temperature, alpha, from_logits=from_logits
    )
    distiller.compile(
        optimizer=keras.optimizers.get(optimizer), metrics=["accuracy"]
    )
    return distiller.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation_data,
        verbose=verbose,
        **fit_kwargs,
    )
