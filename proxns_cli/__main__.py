from proxns_cli import main

main()
