from lenasim.cli import main

raise SystemExit(main())
