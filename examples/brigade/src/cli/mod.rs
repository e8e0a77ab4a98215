//! The `brigade scheduler` and `brigade processor ...` commands: the scheduler glue
//! ([`scheduler`]: the meta scheduler with the REST API), and the client that talks to the
//! REST API ([`client`]) and prints tables or JSON ([`table`]).
//!
//! Exit codes of `brigade processor ...` (scripts can trust them):
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done |
//! | 1 | a local problem (an unreadable file, bad output) |
//! | 2 | bad command line (clap's usage error) |
//! | 3 | the API is unreachable |
//! | 4 | no such processor (404) |
//! | 5 | invalid processor or JSON (400), every problem printed per field |
//! | 6 | conflict (409: exists already, invalid document to start or stop) |
//! | 7 | any other API error |

pub mod client;
pub mod scheduler;
pub mod table;

use std::path::PathBuf;
use std::sync::Arc;

pub use client::{ApiClient, CliError};
pub use scheduler::SchedulerArgs;

use crate::general::Shared;

/// The exit codes of `brigade processor ...`, as `--help` prints them.
pub const EXIT_CODES: &str = "Exit codes: 0 done; 1 local problem (unreadable file); 2 bad command line; \
3 API unreachable; 4 no such processor; 5 invalid processor or JSON (every problem printed per field); \
6 conflict (exists already, or its document is invalid); 7 other API error.";

/// Every route of `brigade scheduler`'s server beside the SDK's own: the REST API and the UI.
pub fn routes(shared: Arc<Shared>) -> axum::Router {
    crate::api::router(shared.clone()).merge(crate::ui::router())
}

/// The options of `brigade processor`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProcessorArgs {
    /// The REST API of a running `brigade scheduler`.
    #[arg(
        long,
        env = "BRIGADE_API",
        default_value = "http://127.0.0.1:7000",
        global = true
    )]
    pub api: String,
    /// Print JSON (the API's answers) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: ProcessorCommand,
}

/// The `brigade processor` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ProcessorCommand {
    /// Adds a processor from its JSON file (`-`: standard input).
    Add {
        /// The processor's JSON file.
        file: PathBuf,
    },
    /// Replaces a processor's configuration from its JSON file (`-`: standard input); it drains
    /// and restarts with it.
    Update {
        /// The processor's JSON file.
        file: PathBuf,
    },
    /// Removes a processor (it drains and stops).
    Remove {
        /// The processor's name.
        name: String,
    },
    /// Starts a stopped processor.
    Start {
        /// The processor's name.
        name: String,
    },
    /// Stops a processor without removing it.
    Stop {
        /// The processor's name.
        name: String,
    },
    /// Lists the processors with their state and counters.
    List,
    /// Shows one processor's status: state, framework id, counters, recent errors.
    Status {
        /// The processor's name.
        name: String,
    },
}

/// Runs a `brigade processor` command; prints to stdout (errors to stderr) and returns the
/// exit code.
pub async fn run_processor(args: ProcessorArgs) -> u8 {
    match run_processor_inner(&args).await {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            if args.json {
                if let Some(body) = e.body() {
                    println!("{body}");
                }
            }
            eprintln!("brigade: {e}");
            e.exit_code()
        }
    }
}

fn read_file(path: &PathBuf) -> Result<String, CliError> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| CliError::Local(format!("standard input: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| CliError::Local(format!("{}: {e}", path.display())))
}

fn name_in(text: &str) -> Result<String, CliError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| CliError::Api {
        status: 400,
        message: format!("invalid processor: the file is not JSON: {e}"),
        body: None,
    })?;
    value
        .get("name")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| CliError::Api {
            status: 400,
            message: "invalid processor: name: missing".into(),
            body: None,
        })
}

async fn run_processor_inner(args: &ProcessorArgs) -> Result<String, CliError> {
    let client = ApiClient::new(&args.api)?;
    let json = args.json;
    let one = |value: serde_json::Value| -> String {
        if json {
            format!(
                "{}\n",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            )
        } else {
            table::status(&value)
        }
    };
    match &args.command {
        ProcessorCommand::Add { file } => {
            let text = read_file(file)?;
            Ok(one(client.add(&text).await?))
        }
        ProcessorCommand::Update { file } => {
            let text = read_file(file)?;
            let name = name_in(&text)?;
            Ok(one(client.update(&name, &text).await?))
        }
        ProcessorCommand::Remove { name } => {
            client.remove(name).await?;
            Ok(if json {
                format!("{}\n", serde_json::json!({"removed": name}))
            } else {
                format!("removed {name}\n")
            })
        }
        ProcessorCommand::Start { name } => Ok(one(client.start(name).await?)),
        ProcessorCommand::Stop { name } => Ok(one(client.stop(name).await?)),
        ProcessorCommand::Status { name } => Ok(one(client.status(name).await?)),
        ProcessorCommand::List => {
            let list = client.list().await?;
            Ok(if json {
                format!(
                    "{}\n",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                )
            } else {
                table::list(&list)
            })
        }
    }
}
