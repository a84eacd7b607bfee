// Alerts on the sync's run telemetry in Application Insights: a failed run, and no successful run for a while.
// Self-contained: main.bicep passes the Application Insights resource id and the address to notify.

@description('Resource id of the Application Insights component the app sends its telemetry to.')
param appInsightsId string

@description('E-mail address that receives the alerts.')
param alertEmail string

@description('Minutes without a successful run before the staleness alert fires (the timer runs every 10 minutes).')
@minValue(15)
@maxValue(2880)
param staleAfterMinutes int = 30

@description('Prefix of the alert and action group names.')
param namePrefix string = 'leadpier-sync'

param location string = resourceGroup().location
param tags object = {}

// The run span lands in `requests` under this name, with its outcome in customDimensions (docs/OPERATIONS.md).
var failedRunQuery = '''
requests
| where name == "leadpier_sync.run" and tostring(customDimensions["sync.status"]) == "failed"
| project timestamp, run_id = tostring(customDimensions["sync.run_id"]), trigger = tostring(customDimensions["sync.trigger"]), error = tostring(customDimensions["sync.error"])
'''

var successfulRunQuery = '''
requests
| where name == "leadpier_sync.run" and tostring(customDimensions["sync.status"]) == "success"
| project timestamp, run_id = tostring(customDimensions["sync.run_id"])
'''

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${namePrefix}-alerts'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'lpsync'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource runFailed 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-run-failed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'LeadPier sync: a run failed'
    description: 'A sync run ended with status failed; its error is in customDimensions["sync.error"] of the run.'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT10M'
    windowSize: 'PT10M'
    criteria: {
      allOf: [
        {
          query: failedRunQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource noSuccess 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-no-successful-run'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'LeadPier sync: no successful run for ${staleAfterMinutes} minutes'
    description: 'No run ended with status success in the window: the sync is failing, stuck or not firing.'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT${staleAfterMinutes}M'
    criteria: {
      allOf: [
        {
          query: successfulRunQuery
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

output actionGroupId string = actionGroup.id
output alertRuleIds array = [
  runFailed.id
  noSuccess.id
]
