Feature: Jobs run through a bounded queue, kept in their own database, by an identity that can only invoke
  In order to protect the upstream quotas and keep job records private and short-lived
  As the operator of imagegen-mcp
  I want a rate-limited queue with bounded retries, a Native-mode database with a TTL, and least privilege

  Scenario: The queue bounds how many jobs run at once
    Given I have google_cloud_tasks_queue defined
    Then it must contain rate_limits
    And it must contain max_concurrent_dispatches
    And its value must be less and equal than 5000

  Scenario: The queue bounds its retries
    Given I have google_cloud_tasks_queue defined
    Then it must contain retry_config
    And it must contain max_attempts
    And its value must be less and equal than 10

  Scenario: Job records live in Firestore Native mode, protected from deletion
    Given I have google_firestore_database defined
    Then it must contain type
    And its value must be FIRESTORE_NATIVE

  Scenario: The jobs database cannot be deleted by accident
    Given I have google_firestore_database defined
    Then it must contain delete_protection_state
    And its value must be DELETE_PROTECTION_ENABLED

  Scenario: Job records expire through a TTL policy on their expiry field
    Given I have google_firestore_field defined
    Then it must contain field
    And its value must be expires_at

  Scenario: The runtime's Firestore access is limited by a condition
    Given I have google_project_iam_member defined
    When its role is "roles/datastore.user"
    Then it must contain condition

  Scenario: On the queue the runtime may only enqueue
    Given I have google_cloud_tasks_queue_iam_member defined
    Then it must contain role
    And its value must be roles/cloudtasks.enqueuer
