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
