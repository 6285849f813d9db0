use clap::Parser;

fn main() {
    let cli = tagsmith::cli::Cli::parse();
    if let Err(err) = tagsmith::cli::run(cli) {
        eprintln!("tagsmith: error: {err}");
        std::process::exit(err.exit_code());
    }
}
