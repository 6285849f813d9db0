fn main() {
    std::process::exit(tagsmith::cli::main());
}
