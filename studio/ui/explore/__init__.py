"""The latent explorer's views (frame view, anchor cards, pad, directions, variations,
walk, render settings) and the panel that binds them to an ExploreSession."""
