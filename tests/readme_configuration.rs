//! The README's configuration table is the `serve --help` of the binary: every
//! flag has its row with the same environment variable, every row names a real
//! flag, and each default in the help is the default its row states.

mod support;

const README: &str = include_str!("../README.md");

/// One option of `serve --help`: its flag, environment variable and stated
/// default.
#[derive(Debug)]
struct HelpOption {
    flag: String,
    env: Option<String>,
    default: Option<String>,
}

fn help_options(help: &str) -> Vec<HelpOption> {
    let mut out: Vec<HelpOption> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("--") {
            let name = rest.split([' ', '=', '<', '[']).next().unwrap_or_default();
            out.push(HelpOption {
                flag: format!("--{name}"),
                env: None,
                default: None,
            });
            continue;
        }
        let Some(last) = out.last_mut() else { continue };
        if let Some(env) = trimmed.strip_prefix("[env: ") {
            last.env = env.split(['=', ']']).next().map(str::to_owned);
        }
        if let Some((_, after)) = trimmed.split_once("[default: ") {
            last.default = after.split(']').next().map(str::to_owned);
        }
    }
    out.retain(|o| o.flag != "--help");
    out
}

/// The configuration table: (flag, env cell, default cell) per row.
fn readme_rows() -> Vec<(String, String, String)> {
    let start = README
        .find("## Configuration")
        .expect("a Configuration section");
    README[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| flag"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            let flag = cells[0]
                .trim_matches('`')
                .split([' ', '`'])
                .next()
                .unwrap_or_default()
                .to_owned();
            (flag, cells[1].to_owned(), cells[2].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_configuration_table_is_the_help() {
    let out = support::process::gateway()
        .args(["serve", "--help"])
        .output()
        .await
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let options = help_options(&help);
    assert!(options.len() > 40, "parsed only {} options", options.len());
    let rows = readme_rows();
    for option in &options {
        let row = rows
            .iter()
            .find(|(flag, ..)| *flag == option.flag)
            .unwrap_or_else(|| {
                panic!(
                    "README's configuration table has no row for {}",
                    option.flag
                )
            });
        if let Some(env) = &option.env {
            assert!(
                row.1.contains(env.as_str()),
                "{}: README names {} for {env}",
                option.flag,
                row.1
            );
        }
        if let Some(default) = &option.default {
            // The help states the default in words; its first word is the value.
            let value = default.split([';', ' ']).next().unwrap_or_default();
            assert!(
                row.2.contains(value),
                "{}: --help says [default: {default}], README says {}",
                option.flag,
                row.2
            );
        }
    }
    for (flag, ..) in rows.iter().filter(|(flag, ..)| flag.starts_with("--")) {
        assert!(
            options.iter().any(|o| o.flag == *flag),
            "README documents {flag}, which serve does not take"
        );
    }
}
