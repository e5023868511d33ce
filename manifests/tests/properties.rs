//! Property: any valid values render objects that the Kubernetes types accept, and no credential
//! appears anywhere but in a Secret's data.

#![allow(clippy::unwrap_used)]

mod common;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use proptest::prelude::*;
use votectl_manifests::values::PostgresUrl;
use votectl_manifests::{Object, Profile, output};

/// The object read back from its JSON by its own type: kind, apiVersion and every field must fit.
fn round_trips(object: &Object) -> bool {
    let json = serde_json::to_value(object).unwrap();
    fn same<T: serde::de::DeserializeOwned + serde::Serialize>(json: &serde_json::Value) -> bool {
        serde_json::from_value::<T>(json.clone())
            .is_ok_and(|t| serde_json::to_value(t).unwrap() == *json)
    }
    match object {
        Object::Namespace(_) => same::<Namespace>(&json),
        Object::NetworkPolicy(_) => same::<NetworkPolicy>(&json),
        Object::PodDisruptionBudget(_) => same::<PodDisruptionBudget>(&json),
        Object::ServiceAccount(_) => same::<ServiceAccount>(&json),
        Object::Secret(_) => same::<Secret>(&json),
        Object::Service(_) => same::<Service>(&json),
        Object::Deployment(_) => same::<Deployment>(&json),
        Object::StatefulSet(_) => same::<StatefulSet>(&json),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn no_credential_anywhere_but_the_secret(case in common::values_file()) {
        let loaded = common::load(Profile::Default, &[("values.yaml", &case.text)], &[]);
        prop_assert_eq!(
            loaded.postgres_password.as_ref().map(|p| p.expose()),
            Some(case.password.as_str())
        );
        let encoded = common::percent_encode(&case.password);
        let leaks = |text: &str| text.contains(&case.password) || text.contains(&encoded);

        // Not in the values, their debug form, or the warnings.
        prop_assert!(!leaks(&serde_json::to_string(&loaded.values).unwrap()));
        let debug_values = format!("{:?}", loaded.values);
        let debug_password = format!("{:?}", loaded.postgres_password);
        prop_assert!(!leaks(&debug_values));
        prop_assert!(!leaks(&debug_password));
        for warning in &loaded.warnings {
            prop_assert!(!leaks(&warning.to_string()), "{}", warning);
        }

        let rendered = common::render(&loaded, None);
        let mut secrets = 0;
        for object in &rendered.objects {
            prop_assert!(round_trips(object), "{} {} does not round-trip", object.kind(), object.name());
            if let Object::Secret(secret) = object {
                secrets += 1;
                prop_assert!(secret.string_data.is_none());
                let data = secret.data.as_ref().unwrap();
                prop_assert_eq!(&data["password"].0, case.password.as_bytes());
                continue;
            }
            let text = serde_json::to_string(object).unwrap();
            prop_assert!(!leaks(&text), "the password is in {} {}", object.kind(), object.name());
        }
        prop_assert_eq!(secrets, 3);
        // Base64 in the Secret, so the plain password is nowhere in the output.
        prop_assert!(!leaks(&output::to_yaml(&rendered.objects).unwrap()));
        prop_assert!(!leaks(&output::to_json(&rendered.objects).unwrap()));

        // Every URL handed to a pod parses to one without a password.
        for (_, container) in common::containers(&rendered) {
            for env in container.env.unwrap_or_default() {
                if env.name == "DATABASE_URL" {
                    let url = PostgresUrl::parse(env.value.as_deref().unwrap()).unwrap();
                    prop_assert!(!url.has_password());
                }
            }
        }
    }
}
