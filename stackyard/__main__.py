from stackyard.cli.main import main

if __name__ == "__main__":
    main(prog_name="yard")        # its help and shell completion say `yard`
