//! Images: pinned, never pulled on a local cluster, and exactly the values' own.

use crate::input::Input;
use crate::report::Finding;

/// The tag of an image reference: `None` when it has none (an implicit `latest`). A reference
/// pinned by digest counts as tagged (the digest decides).
pub(crate) fn tag(reference: &str) -> Option<&str> {
    if let Some((_, digest)) = reference.split_once('@') {
        return Some(digest);
    }
    // A colon after the last slash separates the tag; one before it is a registry's port.
    let name = reference.rsplit_once('/').map_or(reference, |(_, n)| n);
    name.split_once(':').map(|(_, tag)| tag)
}

pub(crate) fn pinned(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        for ctr in pod.containers() {
            let path = format!("{}.image", ctr.path);
            let image = ctr.container.image.as_deref().unwrap_or_default();
            let problem = match tag(image) {
                _ if image.is_empty() => Some("is not set".to_owned()),
                None => Some(format!("{image} has no tag: it means :latest")),
                Some("latest") => Some(format!("{image} uses the moving tag :latest")),
                Some(_) => None,
            };
            if let Some(problem) = problem {
                findings.push(Finding::on(pod.object, path, problem));
            }
        }
    }
    findings
}

pub(crate) fn local_never_pulls(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    if !input.expected.local_cluster {
        return findings;
    }
    for pod in input.pods() {
        for ctr in pod.containers() {
            let policy = ctr.container.image_pull_policy.as_deref();
            if policy != Some("Never") {
                findings.push(Finding::on(
                    pod.object,
                    format!("{}.imagePullPolicy", ctr.path),
                    format!(
                        "is {}: a local cluster must use the images loaded into it (Never)",
                        policy.unwrap_or("not set")
                    ),
                ));
            }
        }
    }
    findings
}

pub(crate) fn from_values(input: &Input<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in input.pods() {
        let Some(expected) = pod.expected else {
            findings.push(Finding::on(
                pod.object,
                "metadata.name",
                "is not a workload of the values: its images cannot be vouched for",
            ));
            continue;
        };
        for ctr in pod.containers() {
            let c = ctr.container;
            let image = c.image.as_deref().unwrap_or_default();
            if image != expected.image {
                findings.push(Finding::on(
                    pod.object,
                    format!("{}.image", ctr.path),
                    format!(
                        "is {image:?}, but images.{} in the values is {:?}",
                        expected.component.name(),
                        expected.image
                    ),
                ));
            }
            let policy = c.image_pull_policy.as_deref().unwrap_or_default();
            if policy != expected.pull_policy {
                findings.push(Finding::on(
                    pod.object,
                    format!("{}.imagePullPolicy", ctr.path),
                    format!(
                        "is {policy:?}, but images.{}.pullPolicy in the values is {:?}",
                        expected.component.name(),
                        expected.pull_policy
                    ),
                ));
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::tag;

    #[test]
    fn tags_are_read_like_the_runtime_does() {
        assert_eq!(tag("redis"), None);
        assert_eq!(tag("docker.io/library/redis:7"), Some("7"));
        assert_eq!(tag("localhost:5000/x/api"), None);
        assert_eq!(tag("localhost:5000/x/api:latest"), Some("latest"));
        assert_eq!(tag("api:latest@sha256:abc"), Some("sha256:abc"));
    }
}
