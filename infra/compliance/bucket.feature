Feature: The output bucket is private and expires generated images
  In order to never leak or hoard generated images
  As the operator of imagegen-mcp
  I want the output bucket locked down and emptied on a schedule

  Scenario: Uniform bucket-level access is on
    Given I have google_storage_bucket defined
    Then it must contain uniform_bucket_level_access
    And its value must be true

  Scenario: Public access prevention is enforced
    Given I have google_storage_bucket defined
    Then it must contain public_access_prevention
    And its value must be enforced

  Scenario: A lifecycle rule deletes outputs
    Given I have google_storage_bucket defined
    Then it must contain lifecycle_rule
    And it must contain action
    And it must contain type
    And its value must be Delete

  Scenario: Outputs are deleted within the maximum retention of 30 days
    Given I have google_storage_bucket defined
    Then it must contain lifecycle_rule
    And it must contain condition
    And it must contain age
    And its value must be less and equal than 30

  Scenario: Uploads have a lifecycle rule of their own
    Given I have google_storage_bucket defined
    Then it must contain lifecycle_rule
    And its value must contain uploads/
