// The Flex Consumption plan and the function app: Linux, Python 3.13, package in blob storage reached with the
// identity, HTTPS only, no FTP or basic publishing credentials, and every app setting the app reads.
param name string
param planName string
param location string
param tags object
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
@description('The vault\'s URI (https://<vault>.vault.azure.net/); the app settings reference secrets in it by name.')
param keyVaultUri string
@description('Names of the vault\'s secrets: leadpierPassword, leApiKey.')
param secretNames object
@description('Whether the vault holds an LE API key; without one LE_API_KEY stays empty.')
param hasLeApiKey bool
param leadpierUsername string
param leApiUrl string
param syncTimezone string
param syncSchedule string
param syncCatchupDays int
param stateContainerName string
param maximumInstanceCount int
param instanceMemoryMB int

// The Python the plan runs; the app reads it back (SYNC_PYTHON_VERSION) and /health says when the worker differs.
var pythonVersion = '3.13'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    //checkov:skip=CKV_AZURE_225:Zone redundancy on Flex Consumption is offered in some regions only; a 10-minute singleton sync whose next run catches up does not need it.
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd finds the app to deploy the `api` service of azure.yaml to by this tag.
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    //checkov:skip=CKV_AZURE_17:Callers are operators and scripts holding a function key; client certificates are not part of the app's access model.
    //checkov:skip=CKV_AZURE_222:Without a virtual network the HTTP routes are public by design: info, health and docs are anonymous, the rest need a function key.
    //checkov:skip=CKV_AZURE_212:Flex Consumption scales to zero between runs; the timer fires on any instance the platform starts, so no standing instance is needed for failover.
    //checkov:skip=CKV_AZURE_213:App Service health check replaces instances that fail a probe; /health answers 503 for problems (settings, upstream staleness) that a new instance does not fix, so it is for an availability test, not instance replacement.
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      // Flex Consumption sets the runtime in functionAppConfig: FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION,
      // WEBSITE_RUN_FROM_PACKAGE and the content-share settings are refused on this plan and must not appear here.
      appSettings: [
        // Host storage through the identity, as service URIs (the shape Microsoft's Flex Consumption samples use, and
        // one a local rehearsal can point at an emulator). The app follows the same settings for its state container
        // and for /health's count of the poison queue, so no connection string or account key exists anywhere.
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storage.properties.primaryEndpoints.blob
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storage.properties.primaryEndpoints.queue
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        // Telemetry with an Entra ID token of the identity: the component accepts nothing else.
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // OpenTelemetry (host.json telemetryMode): the worker sets up the Azure Monitor distro, and every span of a
        // run is kept (runs are few; the distro's default rate limit would drop most of a run's spans).
        {
          name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY'
          value: 'true'
        }
        {
          name: 'OTEL_TRACES_SAMPLER'
          value: 'microsoft.fixed_percentage'
        }
        {
          name: 'OTEL_TRACES_SAMPLER_ARG'
          value: '1.0'
        }
        // "/" is the app's service info, never the platform's welcome page.
        {
          name: 'AzureWebJobsDisableHomepage'
          value: 'true'
        }
        {
          name: 'LEADPIER_USERNAME'
          value: leadpierUsername
        }
        // Secrets: references the platform resolves with keyVaultReferenceIdentity; the values never appear here.
        {
          name: 'LEADPIER_PASSWORD'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${secretNames.leadpierPassword})'
        }
        {
          name: 'LE_API_URL'
          value: leApiUrl
        }
        // Empty when LE wants no key: the app treats an empty setting as unset.
        {
          name: 'LE_API_KEY'
          value: hasLeApiKey ? '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${secretNames.leApiKey})' : ''
        }
        {
          name: 'SYNC_TIMEZONE'
          value: syncTimezone
        }
        {
          name: 'SYNC_SCHEDULE'
          value: syncSchedule
        }
        {
          name: 'SYNC_CATCHUP_DAYS'
          value: string(syncCatchupDays)
        }
        {
          name: 'SYNC_STATE_CONTAINER'
          value: stateContainerName
        }
        // Explicit: a run on startup would fire on every scale-out and every deployment.
        {
          name: 'SYNC_RUN_ON_STARTUP'
          value: 'false'
        }
        {
          name: 'SYNC_PYTHON_VERSION'
          value: pythonVersion
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// No FTP and no basic-auth publishing: azd and Core Tools deploy with an Entra ID token.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = app.name
output url string = 'https://${app.properties.defaultHostName}'
