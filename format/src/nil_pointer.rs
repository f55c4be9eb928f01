//! Go's `<nil>` for a nil pointer field, where a missing field is `<no
//! value>`.
//!
//! Docker renders `inspect` templates over Go structs: a nil pointer field
//! (`State.Health` of a container without a healthcheck) prints as
//! `<nil>`, while a missing map key prints as `<no value>`. Here the data is
//! JSON, where a nil pointer, a nil slice and a nil map are all `null` (or,
//! for a pointer Docker's JSON omits when nil, missing), and gotmpl prints
//! every nil as `<no value>`. So the caller names the fields that are
//! pointers, and each action that prints such a field of the object itself
//! (`{{.State.Health}}`, `{{$.State.Health}}`) is piped through a function
//! that turns that field's nil into `<nil>`. Everything else sees the nil
//! as before: `{{if}}` finds it false, `json` writes `null`.

use std::collections::BTreeSet;
use std::sync::Arc;

use gotmpl::parse::{CommandNode, Expr, ListNode, Node, Parser, PipeNode, SmolStr};
use gotmpl::{Template, Value};

/// The name the template's body is run under once rewritten. Not one a
/// `{{define}}` can clash with in practice: it has a space.
const BODY: &str = "hull inspected";
/// The function printed fields go through. No template can call it: its
/// name is no identifier.
const SHOW: &str = "hull nil pointer";

/// Renders `parsed` (parsed from `source`) over `data`, the template value
/// of `json`, printing the `pointers` (dotted paths from the object:
/// `State.Health`) that are nil in `json` as `<nil>`.
pub(crate) fn render(
    parsed: Template,
    source: &str,
    json: &serde_json::Value,
    data: &Value,
    pointers: &[&str],
) -> gotmpl::Result<String> {
    let nil: BTreeSet<String> = pointers
        .iter()
        .filter(|path| is_nil_at(json, path))
        .map(|path| path.to_string())
        .collect();
    let (mut body, defines) = Parser::new(source, "{{", "}}")?.parse()?;
    pipe_printed_fields(&mut body);
    let mut template = parsed.add_parse_tree(BODY, body);
    for mut define in defines {
        pipe_printed_fields(&mut define.body);
        template = template.add_parse_tree(&define.name, define.body);
    }
    let root = data.clone();
    template
        .func(SHOW, move |arguments| Ok(show(&root, &nil, arguments)))
        .execute_template_to_string(BODY, data)
}

/// Whether the pointer at `path` is nil in `json`: its object is there
/// and has it `null` or not at all.
fn is_nil_at(json: &serde_json::Value, path: &str) -> bool {
    let (parent, field) = path.rsplit_once('.').unwrap_or(("", path));
    parent
        .split('.')
        .filter(|key| !key.is_empty())
        .try_fold(json, |value, key| value.get(key))
        .and_then(serde_json::Value::as_object)
        .is_some_and(|object| object.get(field).is_none_or(serde_json::Value::is_null))
}

/// What [`SHOW`] returns for `[base, path, value]`: `<nil>` when `value`
/// is nil, `base` is the object itself and `path` is a nil pointer of it;
/// else `value`.
fn show(root: &Value, nil: &BTreeSet<String>, arguments: &[Value]) -> Value {
    match arguments {
        [Value::Map(base), Value::String(path), Value::Nil]
            if matches!(root, Value::Map(root) if Arc::ptr_eq(root, base))
                && nil.contains(path.as_ref()) =>
        {
            Value::String("<nil>".into())
        }
        [.., value] => value.clone(),
        [] => Value::Nil,
    }
}

/// Pipes each action of `list` (and of the blocks in it) that prints a
/// field, `{{.A.B}}` or `{{$.A.B}}`, through [`SHOW`] with the field's base
/// and path: `{{.A.B | SHOW . "A.B"}}`.
fn pipe_printed_fields(list: &mut ListNode) {
    for node in &mut list.nodes {
        match node {
            Node::Action(action) if action.pipe.decl.is_empty() => pipe_field(&mut action.pipe),
            Node::List(list) => pipe_printed_fields(list),
            Node::If(branch) | Node::Range(branch) | Node::With(branch) => {
                pipe_printed_fields(&mut branch.body);
                if let Some(other) = &mut branch.else_body {
                    pipe_printed_fields(other);
                }
            }
            _ => {}
        }
    }
}

/// Adds the [`SHOW`] command to `pipe` if it is one field and nothing more.
fn pipe_field(pipe: &mut PipeNode) {
    let [command] = pipe.commands.as_slice() else {
        return;
    };
    let (pos, base, fields) = match command.args.as_slice() {
        [Expr::Field(pos, fields)] => (*pos, Expr::Dot(*pos), fields),
        [Expr::Variable(pos, name, fields)] if name == "$" && !fields.is_empty() => {
            (*pos, Expr::Variable(*pos, name.clone(), Vec::new()), fields)
        }
        _ => return,
    };
    let path = fields
        .iter()
        .map(SmolStr::as_str)
        .collect::<Vec<_>>()
        .join(".");
    pipe.commands.push(CommandNode {
        pos,
        args: vec![
            Expr::Identifier(pos, SHOW.into()),
            base,
            Expr::String(pos, path.into()),
        ],
    });
}
