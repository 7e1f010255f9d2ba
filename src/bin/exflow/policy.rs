//! `exflow policy`: write, check and explain policy files.

use std::path::Path;

use exflow::kb::ExchangeVersion;
use exflow::policy::{profiles, Policy};

use crate::baseline::load_baseline;
use crate::flags::PolicyCommand;
use crate::output::{output_file, write_out};
use crate::{Exit, Failure};

pub fn run(cmd: PolicyCommand) -> Result<Exit, Failure> {
    match cmd {
        PolicyCommand::Profiles => {
            for p in profiles::PROFILES {
                println!("{:<28} {}", p.name, p.description);
            }
        }
        PolicyCommand::Check { file, version } => {
            let p = Policy::load(&file).map_err(Failure::error)?;
            print!("{}", p.describe_for(version.exchange_version));
            println!("{}: valid", file.display());
        }
        PolicyCommand::FromBaseline {
            baseline,
            output,
            force,
            version,
        } => from_baseline(
            &baseline,
            output.as_deref(),
            force,
            version.exchange_version,
        )?,
        PolicyCommand::Init {
            profiles,
            output,
            force,
        } => init(&profiles, output.as_deref(), force)?,
    }
    Ok(Exit::Clean)
}

/// `exflow policy init`: a starter file with the named profiles.
fn init(names: &[String], output: Option<&Path>, force: bool) -> Result<(), Failure> {
    for name in names {
        if profiles::lookup(name).is_none() {
            let known: Vec<&str> = profiles::PROFILES.iter().map(|p| p.name).collect();
            return Err(Failure::error(format!(
                "--profile {name}: no such built-in profile (known: {})",
                known.join(", ")
            )));
        }
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let text = Policy::starter_json(&names);
    let Some(path) = output_file(output) else {
        print!("{text}");
        return Ok(());
    };
    refuse_to_overwrite(path, force)?;
    std::fs::write(path, text)
        .map_err(|e| Failure::error(format!("{}: cannot write: {e}", path.display())))?;
    eprintln!(
        "exflow: wrote {}: edit the groups' addresses, then run `exflow policy check {}`",
        path.display(),
        path.display()
    );
    Ok(())
}

/// `exflow policy from-baseline`: today's working traffic as the policy.
fn from_baseline(
    path: &Path,
    output: Option<&Path>,
    force: bool,
    version: Option<ExchangeVersion>,
) -> Result<(), Failure> {
    let b = load_baseline(path, "policy from-baseline")?;
    let text = exflow::baseline::to_policy::policy_json(&b, &path.display().to_string(), version);
    // What we write must be what analyze accepts.
    if let Err(e) = Policy::parse(&text, "generated policy") {
        return Err(Failure::error(format!(
            "internal: the generated policy does not validate: {e}"
        )));
    }
    if let Some(p) = output_file(output) {
        refuse_to_overwrite(p, force)?;
    }
    write_out(output, &text)
}

/// An existing `path` is only replaced with `--force`.
fn refuse_to_overwrite(path: &Path, force: bool) -> Result<(), Failure> {
    if path.exists() && !force {
        return Err(Failure::error(format!(
            "{}: already exists (use --force to overwrite)",
            path.display()
        )));
    }
    Ok(())
}
