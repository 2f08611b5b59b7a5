from adcreative.cli import main

raise SystemExit(main())
