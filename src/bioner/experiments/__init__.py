"""Experiments: datasets × taggers × seeds as one spec, run, resumed and reported."""
