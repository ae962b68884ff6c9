"""Scripts that reproduce the README's network figures; the library never imports them.

Each is run as ``python -m xbarlab.nn.figures.<name> --out DIR [options]`` and uses only the
library's one training driver (:func:`xbarlab.nn.train.train` /
:func:`~xbarlab.nn.train.train_and_evaluate`) and its one evaluation entry
(:func:`xbarlab.nn.evaluate.evaluate`):

* ``noise_level_sweep``: accuracy vs test σ for plain training, noise injection and HA-SGD.
* ``equal_compute``: HA-SGD L = 4 against noise injection with the same number of passes.
* ``training_trajectory``: the same comparison measured along training.
* ``adc_bits``: accuracy vs ADC bits (the crossbar's signed ADC after every layer).
* ``adc_bits_cnn``: the same on the BatchNorm CNN of ``cnn_compensation``, programmed onto a
  device model and read over time.
* ``gradient_variance``: HA-SGD gradient-estimate variance vs L, independent vs antithetic.
* ``accuracy_over_time``: device-derived noise, SGD vs HA-SGD, accuracy after programming.
* ``mean_shift``: networks trained and tested under a mean weight shift.
* ``cnn_compensation``: drift compensation (none, global, column; ideal or first-read
  reference) on a BatchNorm CNN over time, SGD vs HA-SGD.
"""
