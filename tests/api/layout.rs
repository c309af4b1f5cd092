//! The Functions app's folders, the handler's modules and its routes agree.

use std::path::Path;

use b2b_signup::functions::FUNCTIONS;

use crate::helpers::spawn_app;

fn function_folders() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut folders: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("function.json").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    folders
}

#[test]
fn every_function_folder_is_served_and_every_served_function_has_a_folder() {
    let mut served: Vec<String> = FUNCTIONS.iter().map(|f| f.to_string()).collect();
    served.sort();
    assert_eq!(function_folders(), served);
}

#[tokio::test]
async fn every_function_has_a_route_at_the_path_the_host_uses() {
    let app = spawn_app().await;
    for function in FUNCTIONS {
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(function)
                    .join("function.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let trigger = &json["bindings"][0];
        // Forwarded HTTP functions answer at /api/<route>; the others at /<FunctionName>.
        let path = match trigger["type"].as_str().unwrap() {
            "httpTrigger" => format!("/api/{}", trigger["route"].as_str().unwrap()),
            _ => format!("/{function}"),
        };
        // Route parameters ({id}) get a sample value.
        let path: Vec<&str> = path
            .split('/')
            .map(|s| if s.starts_with('{') { "sample" } else { s })
            .collect();
        let path = path.join("/");
        let response = app
            .http
            .post(format!("{}{path}", app.address))
            .body("{}")
            .send()
            .await
            .unwrap();
        let body = response.text().await.unwrap();
        assert!(
            !body.contains(b2b_signup::app::NO_ROUTE),
            "{function} is routed at {path}: {body}"
        );
    }
}
