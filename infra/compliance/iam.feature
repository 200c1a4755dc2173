Feature: Least-privilege IAM
  In order to keep the service's credentials useless outside their purpose
  As the operator of imagegen-mcp
  I want every grant scoped to the one resource that needs it

  # A member is checked here when the plan knows it. On a first-ever plan the
  # members naming service accounts created in the same plan are "known after
  # apply"; plan_checks.py checks those through the configuration: each must be
  # a reference to a google_service_account of the module (never a default or
  # public principal). Both passes run on the first and on a steady-state plan.

  Scenario: Project-level grants never go to the default compute service account
    Given I have google_project_iam_member defined
    When it has member
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
    And it has member
    Then it must contain member
    And its value must not match the "^(allUsers|allAuthenticatedUsers)$" regex

  Scenario: No invoker binding ever uses allAuthenticatedUsers
    Given I have google_cloud_run_v2_service_iam_member defined
    When it has member
    Then it must contain member
    And its value must not be allAuthenticatedUsers
