//! `kiln login [-u USER] [--password-stdin] [REGISTRY]` and `kiln logout
//! [REGISTRY]`, as docker has them: the password comes from standard input
//! or a no-echo prompt on the terminal, never from the command line.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;

use clap::Args;
use kiln_registry::auth::{CredentialSource, Credentials, Secret};
use miette::IntoDiagnostic;

use super::{CmdResult, block_on};
use crate::cli::GlobalArgs;

/// Docker Hub, when no registry is named.
const DEFAULT_REGISTRY: &str = "docker.io";

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// User name (prompted for on a terminal when missing).
    #[arg(short, long)]
    pub username: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// The registry (`host[:port]`); Docker Hub when omitted.
    pub registry: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry (`host[:port]`); Docker Hub when omitted.
    pub registry: Option<String>,
}

fn prompt_line(label: &str) -> miette::Result<String> {
    eprint!("{label}");
    std::io::stderr().flush().into_diagnostic()?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .into_diagnostic()?;
    Ok(line.trim().to_string())
}

pub fn login(global: &GlobalArgs, args: LoginArgs) -> CmdResult {
    let registry = args.registry.as_deref().unwrap_or(DEFAULT_REGISTRY);
    let interactive = std::io::stdin().is_terminal();
    let username = match args.username {
        Some(u) => u,
        None if args.password_stdin => {
            miette::bail!(
                help = "kiln login -u USER --password-stdin REGISTRY",
                "--password-stdin needs --username"
            )
        }
        None if interactive => prompt_line("Username: ")?,
        None => miette::bail!(
            help = "pass -u USER and the password on standard input with --password-stdin",
            "cannot ask for a user name: standard input is not a terminal"
        ),
    };
    if username.is_empty() {
        miette::bail!("the user name is empty");
    }
    let password = if args.password_stdin {
        let mut buf = String::new();
        std::io::stdin()
            .read_to_string(&mut buf)
            .into_diagnostic()?;
        buf.trim_end_matches(['\n', '\r']).to_string()
    } else if interactive {
        rpassword::prompt_password("Password: ").into_diagnostic()?
    } else {
        miette::bail!(
            help = "echo \"$PASSWORD\" | kiln login -u USER --password-stdin REGISTRY",
            "cannot ask for a password: standard input is not a terminal"
        )
    };
    if password.is_empty() {
        miette::bail!("the password is empty");
    }
    let credentials = Credentials {
        username,
        password: Secret::new(password),
    };
    let config = global.remote_config();
    let outcome = block_on(kiln_registry::remote::login(
        &config,
        registry,
        &credentials,
    ))?
    .into_diagnostic()?;
    match &outcome.stored_in {
        CredentialSource::File(path) => eprintln!(
            "credentials saved unencrypted in {} (configure a credential helper to avoid this)",
            path.display()
        ),
        CredentialSource::Helper(_) => eprintln!("credentials saved in {}", outcome.stored_in),
    }
    if !outcome.verified {
        eprintln!("note: {} asks for no credentials", outcome.registry);
    }
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub fn logout(global: &GlobalArgs, args: LogoutArgs) -> CmdResult {
    let registry = args.registry.as_deref().unwrap_or(DEFAULT_REGISTRY);
    let config = global.remote_config();
    let registry = kiln_registry::auth::normalize_registry(registry);
    if kiln_registry::remote::logout(&config, &registry).into_diagnostic()? {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(ExitCode::SUCCESS)
}
