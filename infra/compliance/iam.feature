Feature: Least-privilege IAM
  In order to keep the service's credentials useless outside their purpose
  As the operator of imagegen-mcp
  I want every grant scoped to the one resource that needs it

  Scenario: Project-level grants never go to the default compute service account
    Given I have google_project_iam_member defined
    Then it must contain member
    And its value must not match the "^serviceAccount:.*-compute@developer\.gserviceaccount\.com$" regex

  Scenario: Secret accessor is never granted project-wide
    Given I have google_project_iam_member defined
    Then it must contain role
    And its value must not match the "^roles/secretmanager\.(secretAccessor|admin)$" regex

  Scenario: Secret accessor is granted per secret
    Given I have google_secret_manager_secret_iam_member defined
    Then it must contain role
    And its value must be roles/secretmanager.secretAccessor

  Scenario: Storage object admin is never granted project-wide
    Given I have google_project_iam_member defined
    Then it must contain role
    And its value must not match the "^roles/storage\.(objectAdmin|admin)$" regex

  Scenario: Named invoker bindings never use allUsers or allAuthenticatedUsers
    Given I have google_cloud_run_v2_service_iam_member defined
    When its address is not ".*\.public_invoker.*" regex
    Then it must contain member
    And its value must not match the "^(allUsers|allAuthenticatedUsers)$" regex

  Scenario: No invoker binding ever uses allAuthenticatedUsers
    Given I have google_cloud_run_v2_service_iam_member defined
    Then it must contain member
    And its value must not be allAuthenticatedUsers
