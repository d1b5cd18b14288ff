"""The domain layer: rules as verb_noun(actor, target, ...) functions that flush, never commit."""
