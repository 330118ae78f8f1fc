#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

/// A container as `inspect` shows one, trimmed to what the tests use.
fn doc() -> Value {
    json!({
        "Id": "0123456789abcdef",
        "Name": "/web",
        "State": {"Status": "running", "Running": true, "Paused": false, "ExitCode": 0,
                  "Pid": 4242, "Health": null},
        "Config": {
            "Image": "busybox",
            "Cmd": ["sleep", "60"],
            "Entrypoint": null,
            "Env": ["PATH=/bin", "A=1"],
            "Labels": {"com.example.x": "hello", "tier": "front"},
        },
        "NetworkSettings": {
            "IPAddress": "10.88.0.2",
            "Networks": {
                "bridge": {"IPAddress": "10.88.0.2", "Gateway": "10.88.0.1"},
                "extra": {"IPAddress": "10.89.0.5", "Gateway": "10.89.0.1"},
            },
            "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": null},
        },
        "Mounts": [
            {"Source": "/srv/a", "Destination": "/a"},
            {"Source": "/srv/b", "Destination": "/b"},
        ],
        "Ratio": 0.25,
        "Big": 1234567.0,
        "Whole": 3.0,
        "Empty": "",
        "Nums": [3, 1, 2],
    })
}

fn r(t: &str) -> String {
    r_on(t, &doc())
}

fn r_on(t: &str, data: &Value) -> String {
    let tmpl = Template::parse(t).unwrap_or_else(|e| panic!("{t:?}: {e}"));
    tmpl.execute(data, &Env::default())
        .unwrap_or_else(|e| panic!("{t:?}: {e}"))
}

fn parse_err(t: &str) -> String {
    match Template::parse(t) {
        Err(e @ Error::Parse(_)) => e.to_string(),
        other => panic!("{t:?}: expected a parse error, got {other:?}"),
    }
}

fn exec_err(t: &str) -> String {
    let tmpl = Template::parse(t).unwrap_or_else(|e| panic!("{t:?}: {e}"));
    match tmpl.execute(&doc(), &Env::default()) {
        Err(e @ Error::Exec(_)) => e.to_string(),
        other => panic!("{t:?}: expected an execution error, got {other:?}"),
    }
}

#[test]
fn fields_and_nesting() {
    assert_eq!(r("{{.State.Status}}"), "running");
    assert_eq!(r("{{.State.ExitCode}} {{.State.Pid}}"), "0 4242");
    assert_eq!(r("{{.NetworkSettings.IPAddress}}"), "10.88.0.2");
    assert_eq!(r("{{.Config.Image}}"), "busybox");
    assert_eq!(r("{{ .Name }}"), "/web");
    assert_eq!(r("plain text"), "plain text");
    assert_eq!(r(""), "");
    // Fields of a variable and of a parenthesized pipeline.
    assert_eq!(r("{{$c := .Config}}{{$c.Image}}"), "busybox");
    assert_eq!(r("{{(.Config).Image}}"), "busybox");
}

#[test]
fn printing_like_go() {
    assert_eq!(r("{{.State.Running}} {{.State.Paused}}"), "true false");
    assert_eq!(r("{{.Config.Cmd}}"), "[sleep 60]");
    assert_eq!(
        r("{{.Config.Labels}}"),
        "map[com.example.x:hello tier:front]"
    );
    assert_eq!(
        r("{{.Mounts}}"),
        "[map[Destination:/a Source:/srv/a] map[Destination:/b Source:/srv/b]]"
    );
    assert_eq!(r("{{.Nope}}"), "<no value>");
    assert_eq!(r("{{.Nope.Deeper}}"), "<no value>");
    assert_eq!(r("{{.Config.Labels.nope}}"), "<no value>");
    assert_eq!(r("{{.State.Health}}"), "<nil>");
    assert_eq!(r("{{.Config.Entrypoint}}"), "<nil>");
    assert_eq!(r("{{.Ratio}} {{.Whole}} {{.Big}}"), "0.25 3 1.234567e+06");
    assert_eq!(
        r("{{3}} {{-2}} {{1.5}} {{0x1F}} {{1e3}} {{'a'}}"),
        "3 -2 1.5 31 1000 97"
    );
    assert_eq!(r("{{true}} {{false}}"), "true false");
    assert_eq!(go_float(0.0001), "0.0001");
    assert_eq!(go_float(0.00001), "1e-05");
    assert_eq!(go_float(100000.0), "100000");
    assert_eq!(go_float(-2.5), "-2.5");
}

#[test]
fn dot_and_root() {
    let v = json!({"A": {"B": "x"}});
    assert_eq!(r_on("{{.}}", &v), "map[A:map[B:x]]");
    assert_eq!(r_on("{{with .A}}{{.B}} {{$.A.B}}{{end}}", &v), "x x");
    assert_eq!(r_on("{{.}}", &json!("s")), "s");
    assert_eq!(
        r_on("{{.}}", &json!([1, "a", null, true])),
        "[1 a <nil> true]"
    );
}

#[test]
fn json_function() {
    assert_eq!(r("{{json .Config.Cmd}}"), r#"["sleep","60"]"#);
    assert_eq!(r("{{json .State.Health}}"), "null");
    assert_eq!(r("{{json .Nope}}"), "null");
    assert_eq!(r("{{json .State.Status}}"), r#""running""#);
    let all: Value = serde_json::from_str(&r("{{json .}}")).unwrap();
    assert_eq!(all, doc());
    // No HTML escaping, as Docker's encoder.
    assert_eq!(r_on("{{json .}}", &json!({"a": "<&>"})), r#"{"a":"<&>"}"#);
    assert_eq!(r("{{.Config | json}}").chars().next(), Some('{'));
}

#[test]
fn range_forms() {
    assert_eq!(
        r("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"),
        "10.88.0.2 10.89.0.5 "
    );
    assert_eq!(
        r("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}"),
        "com.example.x=hello tier=front "
    );
    assert_eq!(
        r(r#"{{range .Mounts}}{{.Source}}:{{.Destination}}{{"\n"}}{{end}}"#),
        "/srv/a:/a\n/srv/b:/b\n"
    );
    assert_eq!(
        r("{{range $i, $e := .Nums}}{{$i}}:{{$e}},{{end}}"),
        "0:3,1:1,2:2,"
    );
    assert_eq!(r("{{range $e := .Nums}}{{$e}}{{end}}"), "312");
    assert_eq!(r("{{range .Nope}}x{{else}}none{{end}}"), "none");
    assert_eq!(r("{{range .State.Health}}x{{else}}none{{end}}"), "none");
    assert_eq!(r("{{range .Config.Entrypoint}}x{{end}}"), "");
    assert_eq!(r("{{range 3}}{{.}}{{end}}"), "012");
    assert_eq!(
        r("{{range .Nums}}{{if eq . 1}}{{break}}{{end}}{{.}}{{end}}"),
        "3"
    );
    assert_eq!(
        r("{{range .Nums}}{{if eq . 1}}{{continue}}{{end}}{{.}}{{end}}"),
        "32"
    );
    // Dot inside the range is the element; $ is still the root.
    assert_eq!(
        r("{{range .Nums}}{{$.Config.Image}}{{end}}"),
        "busyboxbusyboxbusybox"
    );
    // An assignment inside a range reaches the variable outside it.
    assert_eq!(r("{{$n := 0}}{{range .Nums}}{{$n = .}}{{end}}{{$n}}"), "2");
}

#[test]
fn index_forms() {
    assert_eq!(r(r#"{{index .Config.Labels "com.example.x"}}"#), "hello");
    // A missing label is "", as Go's index of a map of strings.
    assert_eq!(r(r#"{{index .Config.Labels "nope"}}"#), "");
    assert_eq!(
        r(r#"{{(index .NetworkSettings.Ports "80/tcp") }}"#),
        "[map[HostIp:0.0.0.0 HostPort:8080]]"
    );
    assert_eq!(
        r(r#"{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}"#),
        "8080"
    );
    assert_eq!(r(r#"{{index .NetworkSettings.Ports "443/tcp"}}"#), "<nil>");
    assert_eq!(
        r(r#"{{index .NetworkSettings.Ports "1/udp"}}"#),
        "<no value>"
    );
    assert_eq!(
        r(r#"{{index .NetworkSettings.Ports "80/tcp" 0 "HostPort"}}"#),
        "8080"
    );
    assert_eq!(r("{{index .Config.Cmd 1}}"), "60");
    assert_eq!(r("{{index .Config.Cmd}}"), "[sleep 60]");
    assert_eq!(r(r#"{{index "abc" 1}}"#), "98");
}

#[test]
fn conditions() {
    assert_eq!(r("{{if .State.Running}}up{{else}}down{{end}}"), "up");
    assert_eq!(r("{{if .State.Paused}}up{{else}}down{{end}}"), "down");
    assert_eq!(r(r#"{{if eq .State.Status "running"}}yes{{end}}"#), "yes");
    assert_eq!(
        r(r#"{{if eq .State.Status "a" "b" "running"}}yes{{end}}"#),
        "yes"
    );
    assert_eq!(
        r(r#"{{if ne .State.Status "running"}}yes{{else}}no{{end}}"#),
        "no"
    );
    assert_eq!(r("{{if not .Nope}}missing{{end}}"), "missing");
    assert_eq!(r("{{if not .Empty}}empty{{end}}"), "empty");
    assert_eq!(r("{{if .State.ExitCode}}bad{{else}}zero{{end}}"), "zero");
    assert_eq!(
        r("{{if .State.Paused}}p{{else if .State.Running}}r{{else}}x{{end}}"),
        "r"
    );
    assert_eq!(r("{{with .Nope}}x{{else}}none{{end}}"), "none");
    assert_eq!(r("{{with .Config}}{{.Image}}{{end}}"), "busybox");
    assert_eq!(
        r("{{with .Nope}}a{{else with .Config}}{{.Image}}{{end}}"),
        "busybox"
    );
    assert_eq!(r("{{with $x := .Config.Image}}{{$x}}{{end}}"), "busybox");
    // and/or return an operand; they stop at the first that decides.
    assert_eq!(r("{{and .State.Running .Config.Image}}"), "busybox");
    assert_eq!(r("{{and .State.Paused .Config.Image}}"), "false");
    assert_eq!(r("{{or .Empty .Config.Image}}"), "busybox");
    assert_eq!(r("{{or .Empty .Nope}}"), "<no value>");
    assert_eq!(r("{{and .Empty (index .Config.Cmd 9)}}"), "");
    assert_eq!(
        r("{{if and .State.Running (eq .State.Pid 4242)}}ok{{end}}"),
        "ok"
    );
    assert_eq!(
        r("{{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge 1.5 1}}"),
        "true true false true"
    );
    assert_eq!(r(r#"{{lt "a" "b"}} {{eq .State.ExitCode 0}}"#), "true true");
    assert_eq!(r("{{eq .Nope .Nope2}} {{eq .Nope 1}}"), "true false");
}

#[test]
fn docker_functions() {
    assert_eq!(r(r#"{{join .Config.Cmd " "}}"#), "sleep 60");
    assert_eq!(r(r#"{{join .Config.Entrypoint ","}}"#), "");
    assert_eq!(r(r#"{{split "a:b:c" ":"}}"#), "[a b c]");
    assert_eq!(r(r#"{{index (split "a:b:c" ":") 2}}"#), "c");
    assert_eq!(r(r#"{{len (split "a:b:c" ":")}}"#), "3");
    assert_eq!(r("{{lower .Name}} {{upper .State.Status}}"), "/web RUNNING");
    assert_eq!(r(r#"{{title "hello wide-world"}}"#), "Hello Wide-World");
    assert_eq!(r(r#"[{{pad "x" 2 1}}][{{pad "" 2 1}}]"#), "[  x ][]");
    assert_eq!(r("{{truncate .Id 4}} {{truncate .Name 99}}"), "0123 /web");
    assert_eq!(
        r("{{len .Config.Cmd}} {{len .Config.Labels}} {{len .Name}}"),
        "2 2 4"
    );
    assert_eq!(
        r(r#"{{slice .Id 0 3}} {{slice .Config.Cmd 1}}"#),
        "012 [60]"
    );
}

#[test]
fn print_functions() {
    assert_eq!(r(r#"{{print "a" "b" 1 2 "c"}}"#), "ab1 2c");
    assert_eq!(r(r#"{{println "a" 1}}"#), "a 1\n");
    assert_eq!(
        r(r#"{{printf "%s %d" .State.Status .State.Pid}}"#),
        "running 4242"
    );
    assert_eq!(
        r(r#"{{printf "%v|%q|%t" .Config.Cmd .Name true}}"#),
        r#"[sleep 60]|"/web"|true"#
    );
    assert_eq!(
        r(r#"{{printf "%-6s|%5d|%05d|%x|%%" "ab" 42 42 255}}"#),
        "ab    |   42|00042|ff|%"
    );
    assert_eq!(r(r#"{{printf "%.2f %s" .Ratio .Nope}}"#), "0.25 %!s(<nil>)");
    assert_eq!(r(r#"{{printf "%d" "x"}}"#), "%!d(string=x)");
    assert_eq!(r(r#"{{printf "%s %s" "x"}}"#), "x %!s(MISSING)");
    assert_eq!(r(r#"{{printf "%s" "x" 3}}"#), "x%!(EXTRA int=3)");
    assert_eq!(r(r#"{{printf "%q" "a\"b\n"}}"#), r#""a\"b\n""#);
}

#[test]
fn pipelines_and_variables() {
    assert_eq!(r("{{.Name | upper}}"), "/WEB");
    // The piped value is the last argument, as in Go.
    assert_eq!(r(r#"{{"," | join .Config.Cmd}}"#), "sleep,60");
    assert!(
        exec_err(r#"{{.Config.Cmd | join ","}}"#).ends_with("expected string; got []interface {}")
    );
    assert_eq!(r(r#"{{"x" | printf "%s-%s" "y"}}"#), "y-x");
    assert_eq!(r("{{.State.Status | upper | lower}}"), "running");
    assert_eq!(r("{{$x := .State.Status}}{{$x}}-{{$x | len}}"), "running-7");
    assert_eq!(r("{{$x := 1}}{{$x = 2}}{{$x}}"), "2");
    assert!(r("{{$}}").starts_with("map["));
    // A variable made inside if is gone after its end (at parse time).
    assert!(parse_err("{{if true}}{{$v := 1}}{{end}}{{$v}}").contains("undefined variable \"$v\""));
}

#[test]
fn literals_and_trimming() {
    assert_eq!(r(r#"{{"a\tb\n\x41\u00e9\\"}}"#), "a\tb\nA\u{e9}\\");
    assert_eq!(r("{{`raw \\n {{`}}"), "raw \\n {{");
    assert_eq!(r("a  {{- .Config.Image -}}  \n b"), "abusyboxb");
    assert_eq!(r("a {{- /* gone */ -}} b"), "ab");
    assert_eq!(r("a{{/* gone */}}b"), "ab");
    assert_eq!(r("{{-3}}"), "-3");
    assert_eq!(r("x\n{{- \"y\"}}"), "xy");
    // \t in the text is left alone for inspect, expanded for list commands.
    assert_eq!(r("a\\tb"), "a\\tb");
    let t = Template::parse_list("{{.A}}\\t{{.B}}\\n").unwrap();
    assert_eq!(
        t.execute(&json!({"A": 1, "B": 2}), &Env::default())
            .unwrap(),
        "1\t2\n"
    );
}

#[test]
fn parse_errors_read_as_go() {
    assert_eq!(
        parse_err("{{.State.Status}"),
        r#"template parsing error: template: :1: unexpected "}" in operand"#
    );
    assert_eq!(
        parse_err("{{.Bad"),
        "template parsing error: template: :1: unclosed action"
    );
    assert_eq!(
        parse_err("{{nosuch .X}}"),
        r#"template parsing error: template: :1: function "nosuch" not defined"#
    );
    assert!(parse_err("{{if .X}}a").ends_with("unexpected EOF"));
    assert!(parse_err("a{{end}}").ends_with("unexpected {{end}}"));
    assert!(parse_err("{{else}}").ends_with("unexpected {{else}}"));
    assert!(parse_err("{{}}").ends_with("missing value for command"));
    assert!(parse_err("{{if}}x{{end}}").ends_with("missing value for if"));
    assert!(parse_err("{{$x}}").ends_with(r#"undefined variable "$x""#));
    assert!(parse_err(r#"{{"abc}}"#).ends_with("unterminated quoted string"));
    assert!(parse_err("{{`abc}}").ends_with("unterminated raw quoted string"));
    assert!(parse_err("{{/* x }}").ends_with("unclosed comment"));
    assert!(parse_err("{{(.X}}").ends_with("unclosed left paren"));
    assert!(parse_err("{{.X | }}").ends_with("missing command"));
    assert!(parse_err("{{break}}").ends_with("{{break}} outside {{range}}"));
    assert!(parse_err("{{.X | 3}}").ends_with("non executable command in pipeline stage 2"));
    assert!(parse_err("{{template \"x\"}}").contains("not supported"));
    assert!(parse_err("{{3x}}").contains("bad number syntax"));
    assert!(
        parse_err("{{range $a, $b, $c := .}}{{end}}").ends_with("too many declarations in range")
    );
    assert!(parse_err("{{if $a, $b := .}}{{end}}").ends_with("too many declarations in if"));
    assert!(parse_err("{{.X)}}").contains(r#"unexpected ")""#));
    // The line is counted.
    assert!(parse_err("a\nb\n{{.X}").contains("template: :3:"));
}

#[test]
fn execution_errors_read_as_go() {
    assert_eq!(
        exec_err("{{.State.Health.Status}}"),
        r#"template: :1:2: executing "" at <.State.Health.Status>: nil pointer evaluating interface {}.Status"#
    );
    assert_eq!(
        exec_err("{{.State.Status.X}}"),
        r#"template: :1:2: executing "" at <.State.Status.X>: can't evaluate field X in type string"#
    );
    assert_eq!(
        exec_err("ab\n  {{index .Config.Cmd 5}}"),
        r#"template: :2:4: executing "" at <index .Config.Cmd 5>: error calling index: index out of range: 5"#
    );
    assert!(exec_err("{{index .State.Running 0}}").ends_with("can't index item of type bool"));
    assert!(
        exec_err("{{index .Config.Labels 0}}").ends_with("value has type int; should be string")
    );
    assert!(exec_err(r#"{{index .Config.Cmd "a"}}"#)
        .ends_with("cannot index slice/array with type string"));
    assert!(exec_err("{{index .Nope 0}}").ends_with("index of untyped nil"));
    assert!(
        exec_err("{{range .State.Status}}x{{end}}").ends_with("range can't iterate over running")
    );
    assert!(exec_err("{{range .State.Running}}x{{end}}").ends_with("range can't iterate over true"));
    assert!(exec_err("{{lower .State.Pid}}")
        .ends_with("wrong type for value; expected string; got int"));
    assert!(exec_err("{{lower}}").ends_with("wrong number of args for lower: want 1 got 0"));
    assert!(exec_err("{{len .State.Running}}").ends_with("error calling len: len of type bool"));
    assert!(exec_err(r#"{{eq .State.Pid "x"}}"#).ends_with("incompatible types for comparison"));
    assert!(exec_err(r#"{{lt true false}}"#).ends_with("invalid type for comparison"));
    assert!(
        exec_err("{{.Name 1}}").contains("can't give argument")
            || exec_err("{{.Name 1}}").contains("not a method")
    );
    assert!(exec_err("{{3 4}}").ends_with("can't give argument to non-function 3"));
    assert!(exec_err("{{slice .Id 5 2}}").ends_with("invalid slice index: 5 > 2"));
    assert!(exec_err("{{and}}").ends_with("wrong number of args for and: want at least 1 got 0"));
}

#[test]
fn strict_root_and_methods() {
    let row = json!({"ID": "abc", "Names": "web"});
    let labels = |name: &str, args: &[Value]| -> Option<Result<Value, String>> {
        (name == "Label").then(|| match args {
            [Value::String(k)] if k == "tier" => Ok(json!("front")),
            [_] => Ok(json!("")),
            _ => Err("wrong number of args for Label: want 1 got 0".into()),
        })
    };
    let env = Env {
        root_type: Some("*formatter.ContainerContext"),
        method: Some(&labels),
        ..Env::default()
    };
    let run = |t: &str| Template::parse_list(t).unwrap().execute(&row, &env);
    assert_eq!(run("{{.ID}} {{.Names}}").unwrap(), "abc web");
    assert_eq!(
        run(r#"{{.Label "tier"}}|{{.Label "x"}}"#).unwrap(),
        "front|"
    );
    assert_eq!(run(r#"{{"tier" | .Label}}"#).unwrap(), "front");
    assert_eq!(
        run("{{.Nope}}").unwrap_err().to_string(),
        r#"template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"#
    );
    assert!(run("{{.Label}}")
        .unwrap_err()
        .to_string()
        .contains("want 1 got 0"));
    assert!(run(r#"{{.ID "x"}}"#)
        .unwrap_err()
        .to_string()
        .ends_with("ID is not a method but has arguments"));
}

#[test]
fn root_json_override() {
    let fields = json!({"Status": "start", "ID": "abc"});
    let wire = json!({"status": "start", "id": "abc"});
    let env = Env {
        root_json: Some(&wire),
        ..Env::default()
    };
    let t = Template::parse("{{.Status}} {{json .}}").unwrap();
    assert_eq!(
        t.execute(&fields, &env).unwrap(),
        r#"start {"id":"abc","status":"start"}"#
    );
}
