"""``python -m gpuplane`` runs the command line."""

from gpuplane.surfaces.cli import main

main()
