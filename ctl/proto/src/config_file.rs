//! `--config FILE` for a clap command: a TOML file whose keys are the command's long flag
//! names (`listen-http = "127.0.0.1:8080"`, `max-peers = 1000`, `http-source = ["…"]`).
//!
//! The file's keys become flags placed before the ones typed, for every flag not given on
//! the command line or through its environment variable: flags and environment variables
//! override the file, the file overrides the defaults. An unknown key, a list for a flag that
//! takes one value or a table is refused with the key's name, so a typo never passes silently.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

/// Why a config file could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("{} is not valid TOML: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: toml::de::Error,
    },
    /// A key is not a flag of the command, or its value has the wrong shape.
    #[error("{}: key `{key}`: {problem}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// The command line `argv` with the keys of its `--config FILE` (if any) inserted as flags
/// of the subcommand they belong to. `cmd` is the binary's full clap command
/// (`Cli::command()`). A command line clap cannot parse is returned as is, so that the real
/// parse reports the error.
pub fn with_config_file(cmd: Command, argv: Vec<OsString>) -> Result<Vec<OsString>, ConfigFileError> {
    // First pass: which (sub)command runs, its --config, and which flags were typed. Nothing
    // is required yet (the file may supply it).
    let mut lenient = relax(cmd);
    lenient.build();
    let Ok(matches) = lenient.clone().try_get_matches_from(&argv) else { return Ok(argv) };
    let (mut leaf_cmd, mut leaf) = (&lenient, &matches);
    let mut path = Vec::new();
    while let Some((name, sub)) = leaf.subcommand() {
        let Some(c) = leaf_cmd.find_subcommand(name) else { break };
        path.push(name.to_string());
        (leaf_cmd, leaf) = (c, sub);
    }
    let Some(file) = config_path(leaf) else { return Ok(argv) };
    let text = std::fs::read_to_string(&file)
        .map_err(|source| ConfigFileError::Read { path: file.clone(), source })?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|source| ConfigFileError::Parse { path: file.clone(), source })?;
    let flags = file_flags(leaf_cmd, leaf, &table, &file)?;
    let at = insert_at(&argv, &path);
    let mut out = argv;
    let typed = out.split_off(at);
    out.extend(flags);
    out.extend(typed);
    Ok(out)
}

/// `cmd` with nothing required, recursively.
fn relax(cmd: Command) -> Command {
    cmd.subcommand_required(false)
        .arg_required_else_help(false)
        .mut_args(|a| a.required(false))
        .mut_subcommands(relax)
}

/// The `--config` value of `m`, if the command has one and it was given.
fn config_path(m: &ArgMatches) -> Option<PathBuf> {
    let has = m.ids().any(|id| id.as_str() == "config");
    let mut raw = if has { m.get_raw("config")? } else { return None };
    raw.next().map(PathBuf::from)
}

/// The flags `table` stands for, skipping those given on the command line or by environment.
fn file_flags(
    cmd: &Command,
    m: &ArgMatches,
    table: &toml::Table,
    file: &Path,
) -> Result<Vec<OsString>, ConfigFileError> {
    let bad = |key: &str, problem: String| ConfigFileError::Key {
        path: file.to_path_buf(),
        key: key.to_string(),
        problem,
    };
    let mut out = Vec::new();
    for (key, value) in table {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && key != "config")
            .ok_or_else(|| bad(key, format!("not a flag of `{}`", cmd.get_name())))?;
        let typed = m.try_contains_id(arg.get_id().as_str()).unwrap_or(false)
            && matches!(
                m.value_source(arg.get_id().as_str()),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
        if typed {
            continue;
        }
        let switch = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
        let many = matches!(arg.get_action(), ArgAction::Append);
        let values = match value {
            toml::Value::Array(items) if many => items.iter().collect(),
            toml::Value::Array(_) => return Err(bad(key, "takes one value, not a list".into())),
            v => vec![v],
        };
        for v in values {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) if switch => {
                    if *b {
                        out.push(OsString::from(format!("--{key}")));
                    }
                    continue;
                }
                toml::Value::Boolean(b) => b.to_string(),
                other => return Err(bad(key, format!("a {} is not a flag value", other.type_str()))),
            };
            if switch {
                return Err(bad(key, "is a switch: write true or false".into()));
            }
            out.push(OsString::from(format!("--{key}={text}")));
        }
    }
    Ok(out)
}

/// Where the subcommand `path`'s own flags may go in `argv`: right after its name.
fn insert_at(argv: &[OsString], path: &[String]) -> usize {
    let mut at = 1.min(argv.len());
    for name in path {
        match argv.iter().skip(at).position(|a| a.to_str() == Some(name)) {
            Some(i) => at += i + 1,
            None => break,
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, CommandFactory, Parser, Subcommand};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(Subcommand, Debug)]
    enum Cmd {
        Run {
            #[arg(long)]
            config: Option<PathBuf>,
            #[arg(long)]
            id: String,
            #[arg(long, default_value_t = 10)]
            peers: u32,
            #[arg(long)]
            fast: bool,
            #[arg(long = "source")]
            sources: Vec<String>,
            #[arg(long, env = "CONFIG_FILE_TEST_ZONE")]
            zone: Option<String>,
        },
    }

    fn run(file: &str, args: &[&str]) -> Result<Cli, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("c.toml");
        std::fs::write(&path, file).map_err(|e| e.to_string())?;
        let mut argv: Vec<OsString> = vec!["prog".into(), "run".into(), "--config".into(), path.into()];
        argv.extend(args.iter().map(OsString::from));
        let argv = with_config_file(Cli::command(), argv).map_err(|e| e.to_string())?;
        Cli::try_parse_from(argv).map_err(|e| e.to_string())
    }

    #[test]
    fn the_file_fills_flags_and_typed_flags_win() {
        let file = "id = \"a\"\npeers = 5\nfast = true\nsource = [\"x\", \"y\"]\nzone = \"z1\"\n";
        let Cmd::Run { id, peers, fast, sources, zone, .. } = run(file, &["--peers", "7"]).unwrap().cmd;
        assert_eq!((id.as_str(), peers, fast), ("a", 7, true));
        assert_eq!(sources, ["x", "y"]);
        assert_eq!(zone.as_deref(), Some("z1"));
        let Cmd::Run { sources, peers, config, .. } = run(file, &["--source", "w"]).unwrap().cmd;
        assert_eq!((sources, peers), (vec!["w".to_string()], 5));
        assert!(config.is_some());
    }

    #[test]
    fn bad_keys_are_refused_by_name() {
        let e = run("id = \"a\"\npeer = 5\n", &[]).unwrap_err();
        assert!(e.contains("`peer`"), "{e}");
        let e = run("id = [\"a\", \"b\"]\n", &[]).unwrap_err();
        assert!(e.contains("`id`") && e.contains("list"), "{e}");
        let e = run("id = \"a\"\nfast = \"yes\"\n", &[]).unwrap_err();
        assert!(e.contains("`fast`"), "{e}");
        let e = run("id = \n", &[]).unwrap_err();
        assert!(e.contains("not valid TOML"), "{e}");
        // A missing required flag is still reported by the real parse.
        let e = run("peers = 5\n", &[]).unwrap_err();
        assert!(e.contains("--id"), "{e}");
    }

    #[test]
    fn no_config_leaves_argv_alone() {
        let cmd = Command::new("p").arg(Arg::new("x").long("x"));
        let argv: Vec<OsString> = vec!["p".into(), "--x".into(), "1".into()];
        assert_eq!(with_config_file(cmd, argv.clone()).unwrap(), argv);
    }
}
