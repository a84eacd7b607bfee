// LeadPier Sync on Azure Functions Flex Consumption: everything `azd up` creates, in one resource group.
// Secure by default: one user-assigned identity for storage, Key Vault and Application Insights; no shared keys,
// no secret in an app setting, an output or a default. The modules under modules/ hold the resources.
targetScope = 'subscription'

// -- where ------------------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; with the subscription and the region it seeds every resource name.')
param environmentName string

// The regions offering Flex Consumption, as Microsoft's Flex sample (Azure-Samples/functions-quickstart-python-http-azd,
// infra/main.bicep) lists them, less its early-access region; Python 3.13 is offered on Flex in each. To check one:
// az functionapp list-flexconsumption-locations --runtime python --runtime-version 3.13
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@description('Region of every resource; it must offer the Flex Consumption plan and Python 3.13.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group to create; empty: rg-<environment name>.')
param resourceGroupName string = ''

// -- the app's settings without a sensible default ----------------------------------------------------------------

@minLength(1)
@description('LeadPier account user name (LEADPIER_USERNAME).')
param leadpierUsername string

@secure()
@minLength(1)
@description('LeadPier account password; stored in Key Vault, the app setting LEADPIER_PASSWORD only references it.')
param leadpierPassword string

@minLength(1)
@description('The LE endpoint (LE_API_URL), https://<le-host>/email_dashboard/stats/le_api.php.')
param leApiUrl string

@secure()
@description('LE API key sent as X-API-Key; stored in Key Vault and referenced by LE_API_KEY. Empty: no key is sent.')
param leApiKey string

// -- the app's settings with a default ----------------------------------------------------------------------------

@description('IANA time zone of the report day and of the times shown (SYNC_TIMEZONE).')
param syncTimezone string = 'Asia/Kolkata'

@description('NCRONTAB schedule of the sync timer, six fields with seconds first, evaluated in UTC (SYNC_SCHEDULE).')
param syncSchedule string = '0 */10 * * * *'

@minValue(0)
@maxValue(31)
@description('How many past days a run catches up on when earlier runs missed them (SYNC_CATCHUP_DAYS, 0 to 31).')
param syncCatchupDays int = 7

@minLength(3)
@maxLength(63)
@description('Blob container of the app\'s state (SYNC_STATE_CONTAINER); the lifecycle rule follows it.')
param stateContainerName string = 'leadpier-sync'

@minValue(1)
@description('Days after which run records (runs/) and daily logs (logs/) are deleted by the lifecycle rule.')
param retentionDays int = 90

// -- the plan -----------------------------------------------------------------------------------------------------

@minValue(40)
@maxValue(1000)
@description('Most instances Flex Consumption may run for each function group (HTTP, the timer, the queue worker): 40 to 1000, 100 by default, per https://learn.microsoft.com/azure/azure-functions/event-driven-scaling (Flex Consumption plan: the lowest maximum is 40, the highest 1000). The work itself is a singleton (a blob lease), so instances beyond a few stay idle and cost nothing.')
param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
@description('Memory of each instance, in MB: 512, 2048 (the default) or 4096, per https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan (instance memory).')
param instanceMemoryMB int = 2048

@description('E-mail address the alerts go to: a failed run, or no successful run for staleAfterMinutes.')
param alertEmail string

@description('Minutes without a successful run before the staleness alert fires (three schedule intervals by default; 15 to 2880, the window the alert rule accepts).')
@minValue(15)
@maxValue(2880)
param staleAfterMinutes int = 30

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-leadpier-${resourceToken}'
var deploymentContainerName = 'app-package'
var secretNames = {
  leadpierPassword: 'leadpier-password'
  leApiKey: 'le-api-key'
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-leadpier-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-leadpier-${resourceToken}'
    applicationInsightsName: 'appi-leadpier-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'stleadpier${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    stateContainerName: stateContainerName
    retentionDays: retentionDays
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    // Seeded with the identity's principal id as well: `azd down` leaves the vault soft-deleted, and with purge
    // protection on its name stays taken for the retention period, so the next `azd up` (a new identity) needs a
    // new name. A re-provision of a live environment keeps the identity, and so the vault.
    name: 'kv-lp-${take(uniqueString(resourceToken, identity.outputs.principalId), 13)}'
    location: location
    tags: tags
    leadpierPassword: leadpierPassword
    leApiKey: leApiKey
    secretNames: secretNames
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: functionAppName
    planName: 'asp-leadpier-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultUri: keyVault.outputs.uri
    secretNames: secretNames
    hasLeApiKey: !empty(leApiKey)
    leadpierUsername: leadpierUsername
    leApiUrl: leApiUrl
    syncTimezone: syncTimezone
    syncSchedule: syncSchedule
    syncCatchupDays: syncCatchupDays
    stateContainerName: stateContainerName
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
  // The host starts as soon as the app exists: its identity must already reach storage and the vault.
  dependsOn: [
    roles
  ]
}

// What an operator watches: alerts on failed or missing runs, and a workbook of the run history (docs/OPERATIONS.md).
module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    appInsightsId: monitoring.outputs.applicationInsightsId
    alertEmail: alertEmail
    staleAfterMinutes: staleAfterMinutes
    location: location
    tags: tags
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    appInsightsId: monitoring.outputs.applicationInsightsId
    location: location
    tags: tags
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = functionApp.outputs.url
output AZURE_FUNCTION_KEY_COMMAND string = 'az functionapp keys list -n ${functionApp.outputs.name} -g ${rg.name} --query functionKeys.default -o tsv'
