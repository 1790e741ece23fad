//! Config files (`Config::from_toml_str`: `${VAR}` substitution, TOML
//! parsing, validation, error rendering). Variables whose name starts with
//! `SET` are defined (value: the name in lower case); others are missing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_gateway::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| name.starts_with("SET").then(|| name.to_lowercase());
    if let Err(error) = Config::from_toml_str(text, &env) {
        let message = error.to_string();
        assert!(
            !message.contains('\n'),
            "a config error is one line: {message:?}"
        );
    }
});
