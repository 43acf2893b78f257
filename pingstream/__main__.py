from pingstream.cli import main

main()
