//! `events`: what happens to the project's containers, from the runtime's
//! event log, told apart by their Compose labels.

use hull_runtime::{EventType, EventsOptions};

use crate::error::Result;
use crate::labels;

use super::Compose;

impl Compose<'_> {
    /// Hands `each` the service and the event of every event of the
    /// project's service containers (of `services`, or all; not `run`
    /// ones) from now on, as they happen, until `each` returns false.
    pub fn events(
        &self,
        services: &[String],
        each: &mut dyn FnMut(&str, &hull_runtime::Event) -> bool,
    ) -> Result<()> {
        for service in services {
            self.project.service(service)?;
        }
        let project = self.project.name.as_str();
        self.runtime
            .events(&EventsOptions::default(), &mut |event| {
                let attributes = &event.actor.attributes;
                let service = attributes.get(labels::SERVICE).map(String::as_str);
                // As Compose's, `run` containers left out.
                let ours = event.kind == EventType::Container
                    && attributes.get(labels::PROJECT).map(String::as_str) == Some(project)
                    && attributes.get(labels::ONEOFF).map(String::as_str) != Some("True");
                match service {
                    Some(service)
                        if ours
                            && (services.is_empty() || services.iter().any(|s| s == service)) =>
                    {
                        each(service, event)
                    }
                    _ => true,
                }
            })?;
        Ok(())
    }
}
