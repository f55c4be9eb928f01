//! The services' `depends_on` graph: checked for rings, walked in
//! dependency order, and closed over (a service with what it needs).

use indexmap::{IndexMap, IndexSet};

use crate::error::{Error, Result};
use crate::model::Service;

/// The services in an order where each comes after what it depends on
/// (dependencies that are not services are skipped); a ring is an error
/// naming it.
pub fn dependency_order(services: &IndexMap<String, Service>) -> Result<Vec<String>> {
    let mut order = Vec::new();
    let mut done = IndexSet::new();
    for name in services.keys() {
        visit(name, services, &mut Vec::new(), &mut done, &mut order)?;
    }
    Ok(order)
}

fn visit(
    name: &str,
    services: &IndexMap<String, Service>,
    trail: &mut Vec<String>,
    done: &mut IndexSet<String>,
    order: &mut Vec<String>,
) -> Result<()> {
    if done.contains(name) {
        return Ok(());
    }
    if let Some(at) = trail.iter().position(|n| n == name) {
        let mut ring = trail[at..].to_vec();
        ring.push(name.to_owned());
        return Err(Error::DependencyCycle(ring));
    }
    let Some(service) = services.get(name) else {
        return Ok(());
    };
    trail.push(name.to_owned());
    for dependency in service.depends_on.keys() {
        visit(dependency, services, trail, done, order)?;
    }
    trail.pop();
    done.insert(name.to_owned());
    order.push(name.to_owned());
    Ok(())
}

/// `names` and, unless `alone`, every service they depend on, directly or
/// not; in dependency order.
pub fn with_dependencies(
    services: &IndexMap<String, Service>,
    names: &[String],
    alone: bool,
) -> Result<Vec<String>> {
    for name in names {
        if !services.contains_key(name) {
            return Err(Error::NoSuchService(name.clone()));
        }
    }
    let mut wanted: IndexSet<String> = names.iter().cloned().collect();
    if !alone {
        let mut next: Vec<String> = names.to_vec();
        while let Some(name) = next.pop() {
            for dependency in services[&name].depends_on.keys() {
                if services.contains_key(dependency) && wanted.insert(dependency.clone()) {
                    next.push(dependency.clone());
                }
            }
        }
    }
    Ok(dependency_order(services)?
        .into_iter()
        .filter(|name| wanted.contains(name))
        .collect())
}

/// The services that depend on `name` directly.
pub fn dependents<'a>(services: &'a IndexMap<String, Service>, name: &str) -> Vec<&'a str> {
    services
        .iter()
        .filter(|(_, service)| service.depends_on.contains_key(name))
        .map(|(dependent, _)| dependent.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Condition, Dependency};

    fn services(edges: &[(&str, &[&str])]) -> IndexMap<String, Service> {
        edges
            .iter()
            .map(|(name, deps)| {
                let depends_on = deps
                    .iter()
                    .map(|dep| {
                        let dependency = Dependency {
                            condition: Condition::ServiceStarted,
                            restart: false,
                            required: true,
                        };
                        (dep.to_string(), dependency)
                    })
                    .collect();
                let service = Service {
                    depends_on,
                    ..Service::default()
                };
                (name.to_string(), service)
            })
            .collect()
    }

    #[test]
    fn dependencies_come_first() {
        let all = services(&[
            ("web", &["api"]),
            ("api", &["db", "cache"]),
            ("db", &[]),
            ("cache", &[]),
        ]);
        assert_eq!(
            dependency_order(&all).unwrap(),
            ["db", "cache", "api", "web"]
        );
        assert_eq!(
            with_dependencies(&all, &["api".into()], false).unwrap(),
            ["db", "cache", "api"]
        );
        assert_eq!(
            with_dependencies(&all, &["api".into()], true).unwrap(),
            ["api"]
        );
        assert_eq!(dependents(&all, "api"), ["web"]);
        assert!(matches!(
            with_dependencies(&all, &["nope".into()], false),
            Err(Error::NoSuchService(_))
        ));
    }

    #[test]
    fn rings_are_named() {
        let all = services(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]);
        let error = dependency_order(&all).unwrap_err();
        assert_eq!(
            error.to_string(),
            "dependency cycle between services: a -> b -> c -> a"
        );
    }
}
