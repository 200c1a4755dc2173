Feature: Usage export to BigQuery
  In order to let a team query its spend in SQL without exposing other logs
  As the operator of imagegen-mcp
  I want a log sink that takes only usage lines into day-partitioned tables, with a writer of its own

  Scenario: The usage sink takes only the service's usage lines
    Given I have google_logging_project_sink defined
    When its address is ".*\.usage$" regex
    Then it must contain filter
    And its value must match the ".*jsonPayload\.event=\"usage\"" regex

  Scenario: The usage sink is scoped to Cloud Run
    Given I have google_logging_project_sink defined
    When its address is ".*\.usage$" regex
    Then it must contain filter
    And its value must match the "resource\.type=\"cloud_run_revision\" AND resource\.labels\.service_name=" regex

  Scenario: The usage sink writes one day-partitioned table
    Given I have google_logging_project_sink defined
    When its address is ".*\.usage$" regex
    Then it must contain bigquery_options
    And it must contain use_partitioned_tables
    And its value must be true

  Scenario: The usage sink has a writer identity of its own
    Given I have google_logging_project_sink defined
    When its address is ".*\.usage$" regex
    Then it must contain unique_writer_identity
    And its value must be true

  Scenario: The sink writer may only edit data of its dataset
    Given I have google_bigquery_dataset_iam_member defined
    Then it must contain role
    And its value must be roles/bigquery.dataEditor

  Scenario: Nobody gets BigQuery roles project-wide from this module
    Given I have google_project_iam_member defined
    Then it must contain role
    And its value must not match the "^roles/bigquery\." regex
