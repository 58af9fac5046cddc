"""The tile: controller, DAC, analog array, ADC, read noise, PRNG and pulse engine."""
