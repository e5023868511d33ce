//! Reads the application's objects from a cluster, as [`Object`]s, so that `votectl check --live`
//! runs the same checks on what is deployed as on what is rendered.
//!
//! Everything of the kinds the checks understand is read from each namespace, not only what
//! `votectl` labelled: a NetworkPolicy or Deployment added by hand is exactly what a live check is
//! for. The exceptions: Secrets are never read, and each namespace's `default` ServiceAccount,
//! which Kubernetes creates and no pod of the application uses, is left out.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{ListParams, ObjectMeta};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use votectl_manifests::Object;

use super::{Error, Result};

/// Page size of list calls.
const PAGE: u32 = 250;

/// Drops what the API server adds for its own bookkeeping.
fn tidy(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
}

async fn list<K>(client: &Client, namespace: &str) -> Result<Vec<K>>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let mut items = Vec::new();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = api.list(&params).await.map_err(|source| Error::Read {
            what: format!(
                "{} in namespace {namespace}",
                K::plural(&Default::default())
            ),
            source,
        })?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(items),
        }
    }
}

/// The objects of `namespaces` (those that exist), in the order `votectl render` uses.
pub async fn read(client: &Client, namespaces: &[&str]) -> Result<Vec<Object>> {
    let mut objects = Vec::new();
    let all: Api<Namespace> = Api::all(client.clone());
    for &namespace in namespaces {
        match all.get_opt(namespace).await {
            Ok(Some(mut ns)) => {
                tidy(&mut ns.metadata);
                objects.push(Object::Namespace(ns));
            }
            // The checks report a missing namespace.
            Ok(None) => continue,
            Err(source) => {
                return Err(Error::Read {
                    what: format!("namespace {namespace}"),
                    source,
                });
            }
        }
    }
    for &namespace in namespaces {
        if !objects
            .iter()
            .any(|o| matches!(o, Object::Namespace(_)) && o.name() == namespace)
        {
            continue;
        }
        macro_rules! read_kind {
            ($kind:ident) => {
                for mut item in list::<$kind>(client, namespace).await? {
                    tidy(&mut item.metadata);
                    objects.push(Object::$kind(item));
                }
            };
        }
        read_kind!(NetworkPolicy);
        read_kind!(PodDisruptionBudget);
        for mut account in list::<ServiceAccount>(client, namespace).await? {
            if account.metadata.name.as_deref() != Some("default") {
                tidy(&mut account.metadata);
                objects.push(Object::ServiceAccount(account));
            }
        }
        read_kind!(Service);
        read_kind!(Deployment);
        read_kind!(StatefulSet);
    }
    let rank = |o: &Object| match o {
        Object::Namespace(_) => 0,
        Object::NetworkPolicy(_) => 1,
        Object::PodDisruptionBudget(_) => 2,
        Object::ServiceAccount(_) => 3,
        Object::Secret(_) => 4,
        Object::Service(_) => 5,
        Object::Deployment(_) => 6,
        Object::StatefulSet(_) => 7,
    };
    objects.sort_by(|a, b| {
        (rank(a), a.namespace(), a.name()).cmp(&(rank(b), b.namespace(), b.name()))
    });
    Ok(objects)
}
