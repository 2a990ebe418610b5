from medfeat.cli import main

raise SystemExit(main())
