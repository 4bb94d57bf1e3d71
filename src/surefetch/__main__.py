from surefetch._cli import main

raise SystemExit(main())
