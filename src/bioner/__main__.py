from bioner.cli import main

main()
