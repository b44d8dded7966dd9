"""Losses: the InfoNCE family and classification losses for values (HL-Gauss, Two-Hot, MSE)."""
