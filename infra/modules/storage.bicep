// The app's storage account: host storage (timer and queue), the deployment package and the app's state,
// reached only with Entra ID (shared keys off), with a lifecycle rule that keeps run history short.
param name string
param location string
param tags object
param deploymentContainerName string
param stateContainerName string
param retentionDays int

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    //checkov:skip=CKV_AZURE_206:The state is the upstream's figures plus a short history, rebuilt by the next runs; locally redundant storage is offered in every region that has Flex Consumption.
    name: 'Standard_LRS'
  }
  properties: {
    //checkov:skip=CKV_AZURE_35:Without a virtual network the Flex Consumption app reaches its storage over the public endpoint; every request still needs an Entra ID token (shared keys are off).
    //checkov:skip=CKV_AZURE_59:Same reason: no virtual network in this template, access is by identity only.
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    isLocalUserEnabled: false
    isSftpEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    // A blob or container deleted by mistake (or by the lifecycle rule) can be undeleted for a week.
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

// Flex Consumption reads the app's package from this container, with the app's identity.
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// The app creates its state container when missing; creating it here lets the lifecycle rule name it from day one.
resource stateContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: stateContainerName
  properties: {
    publicAccess: 'None'
  }
}

// The app never deletes its run records and daily logs: this rule does, after retentionDays.
// source.json, job_stats.json and locks/ are outside the prefixes and are never touched.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          enabled: true
          name: 'leadpier-sync-history'
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
                'appendBlob'
              ]
              prefixMatch: [
                '${stateContainerName}/runs/'
                '${stateContainerName}/logs/'
                '${stateContainerName}/summaries/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: retentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
}

output name string = account.name
