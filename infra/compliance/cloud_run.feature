Feature: The Cloud Run service is bounded and runs as its own identity
  In order to bound cost and blast radius
  As the operator of imagegen-mcp
  I want a dedicated runtime identity, a bounded instance count and a known ingress

  Scenario: The service runs as a dedicated service account, never the default compute one
    Given I have google_cloud_run_v2_service defined
    Then it must contain template
    And it must contain service_account
    And its value must not match the ".*-compute@developer\.gserviceaccount\.com$" regex

  Scenario: Maximum instances are set and bounded
    Given I have google_cloud_run_v2_service defined
    Then it must contain template
    And it must contain scaling
    And it must contain max_instance_count
    And its value must be less and equal than 100

  Scenario: Ingress is one of the supported settings
    Given I have google_cloud_run_v2_service defined
    Then it must contain ingress
    And its value must match the "^INGRESS_TRAFFIC_(ALL|INTERNAL_ONLY|INTERNAL_LOAD_BALANCER)$" regex

  Scenario: The configured ingress is a supported setting
    Given I have ingress variable configured
    Then its value must match the "^INGRESS_TRAFFIC_(ALL|INTERNAL_ONLY|INTERNAL_LOAD_BALANCER)$" regex

  # Both shapes (deploy_as) are one google_cloud_run_v2_service, so every scenario above holds for the
  # function shape too; these hold only where the service is a function (it has a build_config).
  Scenario: A function-shaped service runs the entry point mcp of function/main.py
    Given I have google_cloud_run_v2_service defined
    When it has build_config
    Then it must contain build_config
    And it must contain function_target
    And its value must be mcp

  # The module spells the account out from its account_id, so it is known on a first-ever plan too.
  Scenario: A function is built as a user-managed service account of the project, never a default one
    Given I have google_cloud_run_v2_service defined
    When it has build_config
    Then it must contain build_config
    And it must contain service_account
    And its value must match the "^projects/[^/]+/serviceAccounts/[^@/]+@[^.@/]+\.iam\.gserviceaccount\.com$" regex
