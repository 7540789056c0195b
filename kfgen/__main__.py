from kfgen.cli import main

raise SystemExit(main())
