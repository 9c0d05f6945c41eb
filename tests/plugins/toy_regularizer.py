"""A toy regularizer from outside the package: a feature-norm penalty for classifiers and a
logit-drift penalty for GAN discriminators (the ``epsilon_drift`` term of Karras et al., ICLR
2018, "Progressive Growing of GANs", ``tkarras/progressive_growing_of_gans`` ``loss.py``).

Load it with ``--plugin tests/plugins/toy_regularizer.py`` and select it with ``--reg toy``.
"""

from robustrep.registry import register_regularizer
from robustrep.split import as_split


@register_regularizer("toy", paper="Karras et al., ICLR 2018 (drift term)",
                      acts={"classify": "feature shrinkage", "gan": "extra D term"})
class Toy:
    """Squared features (classify) or squared real logits (gan), times ``weight``.

    Args:
        weight: factor on the penalty, >= 0.
    """

    term = "toy"  # logged as loss/d/toy in a GAN run
    replaces_clean = False  # D keeps its real and fake terms

    def __init__(self, weight: float = 0.1):
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        self.weight = weight

    def feature_terms(self, model, x, generator=None):
        """robustrep.api.FeatureRegularizer: logits of the clean features, plus their norm."""
        split = as_split(model)
        z = split.features(x)
        loss = self.weight * z.float().square().mean()
        return {"loss": loss, "logits": split.head(z), "toy/penalty": loss.detach()}

    def extra_d_term(self, score, x_real, x_fake, loss, generator=None):
        """robustrep.api.ExtraDTerm: keeps D's logits on reals near 0."""
        return self.weight * score(x_real).square().mean()
