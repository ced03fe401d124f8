"""``python -m unnparse …`` (and ``torchrun -m unnparse train …``) runs the ``unnparse`` command."""

from unnparse.cli.parser_app import main

if __name__ == "__main__":
    main()
