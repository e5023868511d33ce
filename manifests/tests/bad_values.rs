//! Each kind of bad input gives a message naming what is wrong and where.

#![allow(clippy::unwrap_used)]

use votectl_manifests::{Error, Layers, Profile, ValuesFile};

fn load(files: &[(&str, &str)], sets: &[&str], strict: bool) -> Result<Vec<String>, Error> {
    Layers {
        profile: Profile::Default,
        files: files.iter().map(|(n, t)| ValuesFile::new(*n, *t)).collect(),
        sets: sets.iter().map(|s| (*s).to_owned()).collect(),
        strict,
        separate_password: false,
    }
    .load()
    .map(|loaded| loaded.warnings.iter().map(ToString::to_string).collect())
}

fn error(file: &str) -> String {
    load(&[("values.yaml", file)], &[], false)
        .unwrap_err()
        .to_string()
}

#[test]
fn unknown_keys_suggest_the_key_meant() {
    let cases = [
        (
            "images:\n  api:\n    tga: x\n",
            "values.yaml:3:5: images.api.tga: unknown key `tga`; did you mean `tag`?",
        ),
        (
            "images:\n  api:\n    pull_policy: Never\n",
            "values.yaml:3:5: images.api.pull_policy: unknown key `pull_policy`; did you mean `pullPolicy`?",
        ),
        (
            "networkPolicy:\n  enabled: false\n",
            "values.yaml:1:1: networkPolicy: unknown key `networkPolicy`; did you mean `networkPolicies`?",
        ),
        (
            "postgres:\n  url: postgres://u@h/d\n",
            "values.yaml:1:1: postgres: unknown key `postgres`; did you mean `postgresql`?",
        ),
        (
            "images:\n  worker: {tag: x}\n",
            "values.yaml:2:3: images.worker: unknown key `worker`; known keys here: `api`, `consumer`, `frontend`, `redis`, `postgres`",
        ),
    ];
    for (file, message) in cases {
        assert_eq!(error(file), message);
    }
}

#[test]
fn wrong_types_name_file_line_column_and_key() {
    let cases = [
        (
            "images:\n  api:\n    tag: [1, 2]\n",
            "values.yaml:3:10: images.api.tag: expected a string, found a sequence",
        ),
        (
            "api:\n  replicas: two\n",
            "values.yaml:2:13: api.replicas: expected an integer from 0 to 65535, found `two`",
        ),
        (
            "networkPolicies:\n  enabled: maybe\n",
            "values.yaml:2:12: networkPolicies.enabled: expected true or false, found `maybe`",
        ),
        (
            "images:\n  redis:\n    pullPolicy: Sometimes\n",
            "values.yaml:3:17: images.redis.pullPolicy: expected one of `Always`, `IfNotPresent`, `Never`, found `Sometimes`",
        ),
        (
            "frontend:\n  service:\n    type: Loadbalancer\n",
            "values.yaml:3:11: frontend.service.type: expected one of `ClusterIP`, `NodePort`, found `Loadbalancer`",
        ),
        (
            "images: nope\n",
            "values.yaml:1:9: images: expected a mapping with keys `api`, `consumer`, `frontend`, `redis`, `postgres`, found `nope`",
        ),
        (
            "api:\n  resources:\n    limits:\n      memory: lots\n",
            "values.yaml:4:15: api.resources.limits.memory: `lots` is not a quantity (a number with an optional suffix: m, k, M, G, Ki, Mi, Gi, …)",
        ),
        (
            "images:\n  api:\n    repository: Docker.io/Foo\n",
            "values.yaml:3:17: images.api.repository: `Docker.io/Foo` is not an image repository: path component `Foo` must be lowercase letters and digits, separated by . _ or -",
        ),
        (
            "voteOptions: [cats, Dogs]\n",
            "values.yaml:1:14: voteOptions: option \"Dogs\" may only contain a-z, 0-9 and '-'",
        ),
        (
            "api:\n  corsOrigins: ['*']\n",
            "values.yaml:2:16: api.corsOrigins: `*` is not allowed: list the origins",
        ),
        (
            "redis:\n  securityContext:\n    runAsUser: 0\n",
            "values.yaml:3:16: redis.securityContext.runAsUser: 0 is root; the pod must run as the image's non-root user",
        ),
        (
            "namespacePrefix: Team_\n",
            "values.yaml:1:18: namespacePrefix: `Team_` cannot start a namespace name: use lowercase letters, digits and '-', starting with a letter or digit, at most 48 characters",
        ),
        (
            "frontend:\n  service: {type: NodePort, nodePort: 80}\n",
            "values.yaml:2:39: frontend.service.nodePort: 80 is outside the NodePort range 30000-32767",
        ),
        (
            "api:\n  resources:\n    requests: {cpu: '2'}\n",
            "values.yaml:3:21: api.resources.requests.cpu: 2 is more than the limit 500m",
        ),
        (
            "images:\n  api:\n    tag: ~\n",
            "values.yaml:3:10: images.api.tag: `tag` is set to null, but it is required (only optional keys may be null)",
        ),
    ];
    for (file, message) in cases {
        assert_eq!(error(file), message, "for {file:?}");
    }
}

#[test]
fn yaml_syntax_errors_name_the_line() {
    assert_eq!(
        error("images:\n  api: {tag: x\n"),
        "values.yaml:2:8: invalid YAML: unclosed bracket '{'"
    );
    assert_eq!(
        error("api:\n  replicas: 1\napi:\n  replicas: 2\n"),
        "values.yaml:3:1: duplicate key `api` (first given at values.yaml:1:1)"
    );
    assert_eq!(
        error("- a list\n"),
        "values.yaml:1:1: a values file is a mapping of keys (like `images:`), found a sequence"
    );
}

#[test]
fn a_password_in_a_url_warns_or_is_refused() {
    let helm = "postgresql:\n  url: postgresql://postgres:postgres@postgres:5432/votes\n";
    let warnings = load(&[("values.yaml", helm)], &[], false).unwrap();
    assert_eq!(
        warnings,
        [
            "values.yaml:2:8: postgresql.url: the URL holds a password; it was moved into the Secret \
          `postgres-password`. Take the password out of the values file: keep it in the Secret (or \
          pass it with --postgres-password-file)"
        ]
    );
    let refused = load(&[("values.yaml", helm)], &[], true).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "values.yaml:2:8: postgresql.url: the URL holds a password \
         (postgresql://postgres:***@postgres:5432/votes); refusing it in strict mode: take the \
         password out of the values file and pass it as a Secret instead"
    );
    let set = load(&[], &["postgresql.url=postgres://u:hunter2@db/x"], true).unwrap_err();
    assert!(
        set.to_string()
            .starts_with("--set postgresql.url=postgres://u:hunter2@db/x: "),
        "{set}"
    );

    let redis = error("redis:\n  url: redis://:hunter2@redis:6379\n");
    assert_eq!(
        redis,
        "values.yaml:2:8: redis.url: `redis://:***@redis:6379` holds credentials; the in-cluster \
         Redis has no password, and a URL in a Deployment would expose them: remove them"
    );
}

#[test]
fn bad_set_syntax_is_explained() {
    let cases = [
        (
            "images.api.tag",
            "--set images.api.tag: `images.api.tag` is not KEY=VALUE (for example images.api.tag=1.2.3)",
        ),
        (
            "images..tag=x",
            "--set images..tag=x: `images..tag` is not a key path like images.api.tag (empty segment)",
        ),
        (
            "=x",
            "--set =x: `` is not a key path like images.api.tag (empty segment)",
        ),
        (
            "api.corsOrigins[0]=http://a",
            "--set api.corsOrigins[0]=http://a: `corsOrigins[0]`: list indexes are not supported by --set; set the whole list as key={a,b} or use a values file",
        ),
        (
            "images.api.tga=x",
            "--set images.api.tga=x: images.api.tga: unknown key `tga`; did you mean `tag`?",
        ),
        (
            "api.replicas=-1",
            "--set api.replicas=-1: api.replicas: expected an integer from 0 to 65535, found `-1`",
        ),
    ];
    for (arg, message) in cases {
        assert_eq!(load(&[], &[arg], false).unwrap_err().to_string(), message);
    }
}

#[test]
fn a_later_layer_does_not_hide_an_earlier_error() {
    let err = load(
        &[
            ("a.yaml", "api:\n  replicas: x\n"),
            ("b.yaml", "api:\n  replicas: 2\n"),
        ],
        &[],
        false,
    )
    .unwrap_err();
    assert_eq!(err.origin().unwrap().to_string(), "a.yaml:2:13");
    assert_eq!(err.path(), Some("api.replicas"));
}
