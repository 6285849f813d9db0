use clap::Parser;

fn main() {
    let cli = tagsmith::cli::Cli::try_parse().unwrap_or_else(|err| {
        // A usage error is the user's to fix: exit 1 (help and --version exit 0).
        let code = if err.use_stderr() { 1 } else { 0 };
        let _ = err.print();
        std::process::exit(code);
    });
    if let Err(err) = tagsmith::cli::run(cli) {
        // Several errors (e.g. from `render`) come one per line, each located.
        let msg = err.to_string();
        let lines: Vec<&str> = msg.lines().collect();
        if lines.len() == 1 {
            eprintln!("tagsmith: error: {msg}");
        } else {
            for line in &lines {
                eprintln!("{line}");
            }
            eprintln!("tagsmith: error: {} problems, nothing written", lines.len());
        }
        std::process::exit(err.exit_code());
    }
}
