"""MR physics of the demo data: tissue relaxation parameters, spin-echo / inversion-recovery signal equations,
bias field and Rician noise.

Tissue parameters are textbook values at 1.5-3 T (see ``README.md`` in this folder for the table and the
expected contrast of each sequence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taco_tools.demo_data.random_fields import smooth_random_field

__all__ = ["ACQUISITIONS", "COMPARTMENTS", "LESION_TISSUES", "MODALITIES", "NORMAL_TISSUES", "SIGNAL_MAXIMUM", "TISSUES",
           "Sequence", "TissueParameters", "add_rician_noise", "random_bias_field", "simulate_contrasts"]

MODALITIES = ("t1", "t1ce", "t2", "flair")

BIAS_CORRELATION_MM = 90.0
BIAS_AMPLITUDE_RANGE = (0.10, 0.20)
NOISE_LEVEL_RANGE = (0.015, 0.03)
SIGNAL_MAXIMUM = 1000.0


@dataclass(frozen=True)
class TissueParameters:
    """Relaxation times (ms) and relative proton density of one tissue compartment.

    ``t1_with_contrast`` is the T1 after gadolinium, for tissue whose blood-brain barrier leaks.
    """

    t1: float
    t2: float
    proton_density: float
    t1_with_contrast: float | None = None

    def effective_t1(self, contrast_enhanced: bool) -> float:
        """T1 seen by a sequence acquired before or after gadolinium."""
        if contrast_enhanced and self.t1_with_contrast is not None:
            return self.t1_with_contrast
        return self.t1


# Mid-range values of the table in README.md. The pre-contrast T1 of enhancing tumour is not in the
# table; 1500 ms (between grey matter and oedema) is the usual hypo- to iso-intense look on T1.
TISSUES = {
    "grey_matter": TissueParameters(t1=1350.0, t2=100.0, proton_density=0.80),
    "white_matter": TissueParameters(t1=825.0, t2=75.0, proton_density=0.70),
    "csf": TissueParameters(t1=4000.0, t2=2000.0, proton_density=1.00),
    "necrosis": TissueParameters(t1=2750.0, t2=300.0, proton_density=0.90),
    "enhancing_tumour": TissueParameters(t1=1500.0, t2=110.0, proton_density=0.85, t1_with_contrast=500.0),
    "oedema": TissueParameters(t1=1650.0, t2=190.0, proton_density=0.85),
}
NORMAL_TISSUES = ("grey_matter", "white_matter", "csf")
LESION_TISSUES = ("necrosis", "enhancing_tumour", "oedema")
COMPARTMENTS = NORMAL_TISSUES + LESION_TISSUES


@dataclass(frozen=True)
class Sequence:
    """Timing (ms) of a spin-echo sequence, with an inversion pulse when ``inversion_time`` is set."""

    repetition_time: float
    echo_time: float
    inversion_time: float | None = None

    def signal(self, tissue: TissueParameters, contrast_enhanced: bool) -> float:
        """Magnitude signal of a pure tissue: ``PD (1 - E1) E2``, or ``PD |1 - 2 exp(-TI/T1) + E1| E2``."""
        t1 = tissue.effective_t1(contrast_enhanced)
        longitudinal = np.exp(-self.repetition_time / t1)
        transverse = np.exp(-self.echo_time / tissue.t2)
        if self.inversion_time is None:
            recovery = 1.0 - longitudinal
        else:
            recovery = abs(1.0 - 2.0 * np.exp(-self.inversion_time / t1) + longitudinal)
        return float(tissue.proton_density * recovery * transverse)


T1_SPIN_ECHO = Sequence(repetition_time=500.0, echo_time=15.0)
T2_SPIN_ECHO = Sequence(repetition_time=4000.0, echo_time=100.0)
FLAIR = Sequence(repetition_time=9000.0, echo_time=120.0, inversion_time=2500.0)
# (sequence, acquired after gadolinium) per modality; T1 and T1ce share one sequence.
ACQUISITIONS = {
    "t1": (T1_SPIN_ECHO, False),
    "t1ce": (T1_SPIN_ECHO, True),
    "t2": (T2_SPIN_ECHO, False),
    "flair": (FLAIR, False),
}


def simulate_contrasts(fractions: np.ndarray) -> dict[str, np.ndarray]:
    """Noise-free images from compartment fractions: each voxel mixes its compartments' signals.

    Each acquisition is scaled so that its brightest compartment reads ``SIGNAL_MAXIMUM``; T1 and
    T1ce share the scale of their common sequence, so enhancement shows as a rise in intensity.

    Args:
        fractions: ``(6, X, Y, Z)`` compartment fractions (``COMPARTMENTS``).

    Returns:
        modality name -> ``(X, Y, Z)`` float32 image.
    """
    images = {}
    for modality, (sequence, contrast_enhanced) in ACQUISITIONS.items():
        brightest = max(sequence.signal(tissue, True) for tissue in TISSUES.values())
        signals = np.array([sequence.signal(TISSUES[name], contrast_enhanced) for name in COMPARTMENTS])
        # Single precision throughout, as the images are stored: several times faster than mixing with float64.
        scaled_signals = (signals * (SIGNAL_MAXIMUM / brightest)).astype(np.float32)
        images[modality] = np.tensordot(scaled_signals, fractions.astype(np.float32, copy=False), axes=1)
    return images


def random_bias_field(shape: tuple[int, ...], spacing: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth multiplicative receive-coil bias whose largest deviation from 1 is 10-20 %.

    Returns:
        ``(X, Y, Z)`` float32 positive field.
    """
    log_field = smooth_random_field(shape, BIAS_CORRELATION_MM / spacing, rng)[0]
    amplitude = rng.uniform(*BIAS_AMPLITUDE_RANGE)
    return np.exp(log_field * (np.log1p(amplitude) / np.abs(log_field).max())).astype(np.float32)


def add_rician_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise of std ``sigma`` per channel.

    Reconstructed MR magnitude images carry Rician noise: zero signal reads as a Rayleigh-distributed
    positive value, never exactly zero.
    """
    real = image + sigma * rng.standard_normal(image.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(image.shape, dtype=np.float32)
    return np.hypot(real, imaginary).astype(np.float32)
