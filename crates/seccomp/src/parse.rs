//! Parsing a profile from JSON with field-precise error messages.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use serde_json::Value;

use crate::SeccompError;

/// Parses an OCI `linux.seccomp` object from JSON.
///
/// Unknown enum strings are reported with the field they occur in, e.g.
/// `linux.seccomp.syscalls[3].args[0].op: unknown operator "SCMP_CMP_FOO"`,
/// instead of serde's generic "unknown variant" message. Fields that are not
/// part of the OCI schema (Docker's `archMap`, `comment`, `includes`, ...)
/// are ignored.
pub fn parse_profile(json: &str) -> Result<LinuxSeccomp, SeccompError> {
    let v: Value = serde_json::from_str(json)?;
    validate(&v)?;
    Ok(serde_json::from_value(v)?)
}

/// Checks that `v` deserialises as `T` (one of the OCI enums).
macro_rules! check {
    ($t:ty, $v:expr, $field:expr, $what:expr) => {
        if serde_json::from_value::<$t>($v.clone()).is_err() {
            return Err(bad_enum($v, $field, $what));
        }
    };
}

fn bad_enum(v: &Value, field: &str, what: &str) -> SeccompError {
    let msg = match v {
        Value::String(s) => format!("unknown {what} {s:?}"),
        other => format!("expected a {what} string, got {other}"),
    };
    SeccompError::invalid(field, msg)
}

fn array<'a>(v: &'a Value, key: &str, field: &str) -> Result<&'a [Value], SeccompError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(SeccompError::invalid(
            format!("{field}.{key}"),
            format!("expected an array, got {other}"),
        )),
    }
}

fn validate(v: &Value) -> Result<(), SeccompError> {
    const ROOT: &str = "linux.seccomp";
    if !v.is_object() {
        return Err(SeccompError::invalid(ROOT, "expected an object"));
    }
    match v.get("defaultAction") {
        None => {
            return Err(SeccompError::invalid(
                format!("{ROOT}.defaultAction"),
                "missing",
            ))
        }
        Some(a) => check!(
            LinuxSeccompAction,
            a,
            &format!("{ROOT}.defaultAction"),
            "action"
        ),
    }
    for (i, a) in array(v, "architectures", ROOT)?.iter().enumerate() {
        check!(
            Arch,
            a,
            &format!("{ROOT}.architectures[{i}]"),
            "architecture"
        );
    }
    for (i, f) in array(v, "flags", ROOT)?.iter().enumerate() {
        check!(
            LinuxSeccompFilterFlag,
            f,
            &format!("{ROOT}.flags[{i}]"),
            "flag"
        );
    }
    for (i, sc) in array(v, "syscalls", ROOT)?.iter().enumerate() {
        let field = format!("{ROOT}.syscalls[{i}]");
        if !sc.is_object() {
            return Err(SeccompError::invalid(field, "expected an object"));
        }
        match sc.get("action") {
            None => return Err(SeccompError::invalid(format!("{field}.action"), "missing")),
            Some(a) => check!(LinuxSeccompAction, a, &format!("{field}.action"), "action"),
        }
        for (j, arg) in array(sc, "args", &field)?.iter().enumerate() {
            let af = format!("{field}.args[{j}]");
            match arg.get("op") {
                None => return Err(SeccompError::invalid(format!("{af}.op"), "missing")),
                Some(op) => check!(LinuxSeccompOperator, op, &format!("{af}.op"), "operator"),
            }
            if let Some(ix) = arg.get("index") {
                match ix.as_u64() {
                    Some(n) if n <= 5 => {}
                    Some(n) => {
                        return Err(SeccompError::invalid(
                            format!("{af}.index"),
                            format!("{n} is out of range 0..=5"),
                        ))
                    }
                    None => {
                        return Err(SeccompError::invalid(
                            format!("{af}.index"),
                            format!("expected an integer 0..=5, got {ix}"),
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}
