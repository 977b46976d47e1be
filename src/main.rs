//! The `kiln` command: parse arguments, run one subcommand, and map its
//! outcome to an exit code (the table is `kiln::error::exit`).

use std::process::ExitCode;

use clap::Parser;

/// A result line on stdout. A reader that went away (`kiln inspect | head`)
/// ends the program quietly, with the status a SIGPIPE would give.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = writeln!(stdout, $($arg)*).and_then(|_| stdout.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(kiln::error::exit::BROKEN_PIPE);
            }
            eprintln!("error: cannot write to stdout: {e}");
            std::process::exit(1);
        }
    }};
}

mod cli;

use cli::{Cli, Command, Outcome};
use kiln::error::exit;

fn main() -> ExitCode {
    cli::log::fixed_mmap_threshold();
    // Before any other thread starts: they inherit the blocked signals.
    kiln::tmp::on_signals();
    let cli = Cli::parse();
    cli::log::init_logging(cli.verbose, cli.quiet, &cli.color);
    let result = match cli.command {
        Command::Build(args) => cli::build::build(args),
        Command::Check(args) => cli::check::check(args),
        Command::Inspect(args) => cli::inspect::inspect(args).map(|()| Outcome::Done),
        Command::Index(args) => cli::index::index(args).map(|()| Outcome::Done),
        Command::Verify(args) => cli::supply::verify(args).map(|()| Outcome::Done),
        Command::Sbom(args) => cli::supply::sbom(args).map(|()| Outcome::Done),
        Command::Init(args) => cli::init(args).map(|()| Outcome::Done),
        Command::Schema => cli::schema().map(|()| Outcome::Done),
        Command::Version => cli::version().map(|()| Outcome::Done),
        Command::Completions { shell } => cli::completions(shell).map(|()| Outcome::Done),
    };
    let code = match result {
        Ok(Outcome::Done) => 0,
        Ok(Outcome::Findings) => exit::FAILURE,
        Err(err) => {
            cli::log::report(&err);
            err.exit_code()
        }
    };
    ExitCode::from(code as u8)
}
