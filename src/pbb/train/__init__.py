"""Training: curricula (ordered stages) and their SFT / GRPO stages through TRL."""
