from cloudserve.cli.main import main

main()
