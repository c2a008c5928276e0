from rlo_cli.app import main

main()
